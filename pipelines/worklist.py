"""The night's rows to fix into the publication database for the clerks' work list
(popsync.worklist): streamed out of the resolved results joined with the registry by DuckDB, a
batch at a time, before the night publishes."""

from __future__ import annotations

import logging

import pyarrow.parquet as pq

from expectations.nation import files_sql
from pipelines.context import RunContext
from pipelines.steps import LINE_FLAGS, _chunks, step
from popsync import worklist
from popsync.contracts import SYNCHRONIZED

log = logging.getLogger("popsync.run")

BATCH_ROWS = 50_000
# registry columns the work list filters on when the registry has them (design.md: optional)
OPTIONAL = ("ward_code", "employer_code", "employer_name")
DUPLICATE = "duplicate_registration"


def rows_sql(results: str, registry: str, registry_columns: set[str]) -> str:
    """The night's rows to fix in ``worklist.LOADED`` order; a duplicate registration names
    every registration linked to the same person (``other_vss_codes``, itself included)."""
    optional = ", ".join(f"f.{c}" if c in registry_columns else f"NULL::VARCHAR AS {c}"
                         for c in OPTIONAL)
    lines = ", ".join(f"coalesce(r.{flag}, false) AS {flag.removeprefix('scheme_')}"
                      for flag in LINE_FLAGS)
    return f"""
        WITH listed AS (
            SELECT * FROM read_parquet({results})
            WHERE status <> '{SYNCHRONIZED}' AND office_code IS NOT NULL),
        same_person AS (
            SELECT personal_id, string_agg(vss_code, ',' ORDER BY vss_code) AS codes
            FROM read_parquet({results})
            WHERE personal_id IN (SELECT personal_id FROM listed
                                  WHERE list_contains(reasons, '{DUPLICATE}'))
            GROUP BY personal_id)
        SELECT r.vss_code, r.office_code AS province_code, r.status, r.reasons,
               f.full_name, f.birth_date, f.gender, f.national_id, r.personal_id,
               r.match_probability, r.suggested_full_name, r.suggested_birth_date,
               r.suggested_gender, r.suggested_national_id, {lines}, {optional},
               CASE WHEN list_contains(r.reasons, '{DUPLICATE}') THEN d.codes END
                   AS other_vss_codes, r.explanation, r.candidates
        FROM listed r
        LEFT JOIN read_parquet({registry}) f USING (vss_code)
        LEFT JOIN same_person d ON d.personal_id = r.personal_id
    """


@step("worklist")
def load_worklist(work_dir: str, resolve: list[str]) -> str:
    """The rows to fix into the database, unseen until the night publishes; older nights' rows
    beyond the latest few publications go first. Returns the work folder."""
    ctx = RunContext.load(work_dir)
    pruned = worklist.prune(ctx.engine)
    chunks = _chunks(ctx, "registry")
    registry_columns = set(pq.read_schema(chunks[0]).names) if chunks else set()
    query = rows_sql(files_sql(resolve), files_sql(chunks), registry_columns)
    with ctx.sql() as sql:
        reader = sql.sql(query).to_arrow_reader(batch_size=BATCH_ROWS)
        loaded = worklist.load(ctx.engine, ctx.run_id, reader)
    log.info("worklist: %d rows to fix loaded for run %d (%d rows of older nights removed)",
             loaded, ctx.run_id, pruned)
    return work_dir
