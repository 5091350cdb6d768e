"""Great Expectations suites of the nightly run, kept as code (inputs, results, report)."""

import logging


def quiet_great_expectations() -> None:
    """GX logs hundreds of INFO lines on import (functions it registers for its docs) and on
    each ephemeral context, some modules setting their own level to INFO: keep only its
    warnings, so task logs hold the night's figures."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations."):
            logging.getLogger(name).setLevel(logging.NOTSET)  # inherit WARNING


quiet_great_expectations()  # before any GX import
