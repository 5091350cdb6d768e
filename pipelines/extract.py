"""Read a registry or population source (Parquet, CSV, or SQL) and map it to the canonical columns.

Every failure is a PopsyncError naming the source (file or database) and, where it applies, the
column or line, so the night stops before anything is published.
"""

from __future__ import annotations

from collections.abc import Iterator

import fsspec
import numpy as np
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


def _parquet_file(source: SourceConfig, f) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(f)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PopsyncError(
            f"{source.name} {source.source}: not a readable Parquet file ({exc}); "
            f"give a .parquet or .csv file or set {source.name}.format"
        ) from None


def pieces(source: SourceConfig, rows: int) -> list[dict]:
    """The source cut into pieces that can be extracted apart, each of about ``rows`` rows: a
    Parquet file by runs of row groups (``row_groups``: [first, last + 1], ``first_row``: its
    first row, 1-based); any other source is one piece, streamed in order."""
    if source.format != "parquet":
        return [{"source": source.name, "index": 0, "row_groups": None, "first_row": 1}]
    with _open(source) as f:
        metadata = _parquet_file(source, f).metadata
    if metadata.num_rows == 0:
        raise PopsyncError(f"{source.name} {describe(source)}: has a header but no rows")
    found, start, first_row, held = [], 0, 1, 0
    for group in range(metadata.num_row_groups):
        held += metadata.row_group(group).num_rows
        if held >= rows or group == metadata.num_row_groups - 1:
            found.append({"source": source.name, "index": len(found),
                          "row_groups": [start, group + 1], "first_row": first_row})
            start, first_row, held = group + 1, first_row + held, 0
    return found


def _read_parquet(source: SourceConfig, rows: int, row_groups: list[int] | None = None
                  ) -> Iterator[pd.DataFrame]:
    with _open(source) as f:
        parquet = _parquet_file(source, f)
        first_rows = np.cumsum([0] + [parquet.metadata.row_group(i).num_rows
                                      for i in range(parquet.metadata.num_row_groups)])
        buffered: list[pa.Table] = []
        for group in range(*(row_groups or [0, parquet.metadata.num_row_groups])):
            batches = parquet.iter_batches(batch_size=rows, row_groups=[group])
            while True:
                try:  # a row group at a time, so that a damaged one is named
                    batch = next(batches, None)
                except (pa.ArrowException, OSError) as exc:
                    raise PopsyncError(
                        f"{source.name} {source.source}: row group {group} (rows "
                        f"{first_rows[group] + 1:,} and after) is not readable: "
                        f"{str(exc).splitlines()[0]}; nothing was published"
                    ) from None
                if batch is None:
                    break
                buffered.append(pa.Table.from_batches([batch]))
                if sum(t.num_rows for t in buffered) >= rows:
                    table = pa.concat_tables(buffered)
                    yield table.slice(0, rows).to_pandas()
                    buffered = [table.slice(rows)]
        if buffered and sum(t.num_rows for t in buffered):
            yield pa.concat_tables(buffered).to_pandas()


def _read_csv(source: SourceConfig, rows: int, row_groups: None = None
              ) -> Iterator[pd.DataFrame]:
    with _open(source) as f:
        try:
            # Everything as text: IDs keep their leading zeros, "NA" stays a name.
            yield from pd.read_csv(
                f, dtype=str, keep_default_na=False, sep=source.delimiter,
                encoding=source.encoding, chunksize=rows,
            )
        except UnicodeDecodeError as exc:
            raise PopsyncError(
                f"{source.name} {source.source}: not readable as {source.encoding} "
                f"(byte {exc.start} of a block); set {source.name}.encoding in the run config "
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


def _read_sql(source: SourceConfig, rows: int, row_groups: None = None
              ) -> Iterator[pd.DataFrame]:
    try:
        engine = sa.create_engine(source.source)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise PopsyncError(f"{source.name} {describe(source)}: bad database URL: {exc}") from None
    if source.query:
        statement = sa.text(source.query)
    else:
        statement = sa.select(sa.text("*")).select_from(sa.table(source.table))
    try:
        # a server-side cursor: the rows arrive a block at a time, not as one result set
        with engine.connect().execution_options(stream_results=True) as connection:
            yield from pd.read_sql(statement, connection, chunksize=rows,
                                   dtype_backend="pyarrow")
    except sa.exc.SQLAlchemyError as exc:
        first_line = str(exc.orig if hasattr(exc, "orig") and exc.orig else exc).splitlines()[0]
        raise PopsyncError(f"{source.name} {describe(source)}: cannot read: {first_line}") from None
    finally:
        engine.dispose()


_READERS = {"parquet": _read_parquet, "csv": _read_csv, "sql": _read_sql}


def extract_batches(source: SourceConfig, rows: int, row_groups: list[int] | None = None
                    ) -> Iterator[pd.DataFrame]:
    """The source's rows (of a Parquet source, those of ``row_groups`` [first, last + 1]) in
    canonical columns, ``rows`` at a time, in the source's order, so memory is bounded by a
    batch, not by the source."""
    empty = True
    for raw in _READERS[source.format](source, rows, row_groups):
        if len(raw) == 0:
            continue
        empty = False
        try:
            yield apply_mapping(raw, source.mapping)
        except MissingColumnError as exc:
            raise PopsyncError(
                f"{source.name} {describe(source)}: {exc}; map it in {source.name}.mapping"
            ) from None
    if empty:
        raise PopsyncError(f"{source.name} {describe(source)}: has a header but no rows")


def extract(source: SourceConfig) -> pd.DataFrame:
    """The whole source in canonical columns (row i = source row i, i.e. CSV line i + 2): for
    small sources and tests; the night streams with ``extract_batches``."""
    return pd.concat(list(extract_batches(source, 1_000_000)), ignore_index=True)
