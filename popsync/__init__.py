"""popsync: nightly reconciliation of VSS participants with the National Population Database."""

__version__ = "0.1.0"
