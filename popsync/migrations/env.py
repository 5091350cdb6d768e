"""Alembic's environment: migrations run on the connection ``popsync.schema`` hands in, over the
publication tables only (the portal's tables in the same database are not versioned here)."""

from alembic import context

from popsync import store


def _ours(obj, name, type_, reflected, compare_to) -> bool:
    return type_ != "table" or name in store.metadata.tables


context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=store.metadata,
    include_object=_ours,
    render_as_batch=True,  # SQLite alters a table by copying it
)
with context.begin_transaction():
    context.run_migrations()
