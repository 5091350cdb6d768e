"""Read a registry or population source (Parquet, CSV, or SQL) and map it to the canonical columns.

Every failure is a PopsyncError naming the source (file or database) and, where it applies, the
column or line, so the night stops before anything is published.
"""

from __future__ import annotations

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines.config import SourceConfig
from pipelines.mapping import MissingColumnError, apply_mapping
from popsync.errors import PopsyncError


def describe(source: SourceConfig) -> str:
    """The source as shown in messages: a path, or a database URL without its password."""
    if source.format == "sql":
        try:
            url = sa.make_url(source.source).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            url = "<unreadable database URL>"
        return f"{url} ({'table ' + source.table if source.table else 'query'})"
    return source.source


def _open(source: SourceConfig):
    try:
        fs, path = fsspec.core.url_to_fs(source.source)
    except (ImportError, ValueError) as exc:
        raise PopsyncError(f"{source.name} {source.source}: cannot open: {exc}") from None
    if not fs.exists(path):
        raise PopsyncError(f"{source.name} {source.source}: no such file")
    if fs.isdir(path):
        raise PopsyncError(f"{source.name} {source.source}: is a folder, not a file")
    if fs.size(path) == 0:
        raise PopsyncError(f"{source.name} {source.source}: the file is empty")
    return fsspec.open(source.source, "rb", compression="infer")


def _read_parquet(source: SourceConfig) -> pd.DataFrame:
    with _open(source) as f:
        try:
            table = pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise PopsyncError(
                f"{source.name} {source.source}: not a readable Parquet file ({exc}); "
                f"give a .parquet or .csv file or set {source.name}.format"
            ) from None
    return table.to_pandas()


def _read_csv(source: SourceConfig) -> pd.DataFrame:
    with _open(source) as f:
        try:
            # Everything as text: IDs keep their leading zeros, "NA" stays a name.
            return pd.read_csv(
                f, dtype=str, keep_default_na=False, sep=source.delimiter, encoding=source.encoding
            )
        except UnicodeDecodeError as exc:
            raise PopsyncError(
                f"{source.name} {source.source}: not readable as {source.encoding} "
                f"(byte {exc.start}); set {source.name}.encoding in the run config "
                "(e.g. utf-8-sig, utf-16, cp1258)"
            ) from None
        except pd.errors.EmptyDataError:
            raise PopsyncError(
                f"{source.name} {source.source}: the file has no header or rows"
            ) from None
        except pd.errors.ParserError as exc:
            raise PopsyncError(
                f"{source.name} {source.source}: not a readable CSV file: {exc}"
            ) from None


def _read_sql(source: SourceConfig) -> pd.DataFrame:
    try:
        engine = sa.create_engine(source.source)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise PopsyncError(f"{source.name} {describe(source)}: bad database URL: {exc}") from None
    if source.query:
        statement = sa.text(source.query)
    else:
        statement = sa.select(sa.text("*")).select_from(sa.table(source.table))
    try:
        with engine.connect() as connection:
            return pd.read_sql(statement, connection, dtype_backend="pyarrow")
    except sa.exc.SQLAlchemyError as exc:
        first_line = str(exc.orig if hasattr(exc, "orig") and exc.orig else exc).splitlines()[0]
        raise PopsyncError(f"{source.name} {describe(source)}: cannot read: {first_line}") from None
    finally:
        engine.dispose()


_READERS = {"parquet": _read_parquet, "csv": _read_csv, "sql": _read_sql}


def extract(source: SourceConfig) -> pd.DataFrame:
    """The source's rows in canonical columns (row i = source row i, i.e. CSV line i + 2)."""
    raw = _READERS[source.format](source)
    if len(raw) == 0:
        raise PopsyncError(f"{source.name} {describe(source)}: has a header but no rows")
    try:
        return apply_mapping(raw, source.mapping)
    except MissingColumnError as exc:
        raise PopsyncError(
            f"{source.name} {describe(source)}: {exc}; map it in {source.name}.mapping"
        ) from None
