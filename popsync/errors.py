"""Errors a user can act on: the CLI prints them as one line and exits with code 2."""


class PopsyncError(Exception):
    """A user-facing error: say what was wrong, where (file, row, column) and what to do."""


class RunStopped(PopsyncError):
    """This run may not go on: it no longer holds its run date (it failed for good elsewhere, or
    another run took over). Final: retrying cannot help, and the cause has been reported."""


class GateStop(PopsyncError):
    """A validation gate stopped the night. ``figures`` say which checks failed and on how many
    rows, never a row's values (the message may quote some): alerts send the figures."""

    def __init__(self, message: str, gate: str, figures: list[str]):
        super().__init__(message)
        self.gate = gate
        self.figures = figures

    def __reduce__(self):  # picklable across processes (forked workers, Airflow)
        return type(self), (str(self), self.gate, self.figures)
