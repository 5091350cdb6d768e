"""Alembic migrations of the publication database (``popsync.store``): ``popsync db upgrade``."""
