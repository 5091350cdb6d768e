"""Errors a user can act on: the CLI prints them as one line and exits with code 2."""


class PopsyncError(Exception):
    """A user-facing error: say what was wrong, where (file, row, column) and what to do."""
