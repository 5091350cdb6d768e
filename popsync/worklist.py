"""The clerks' work list in the publication database: a night's rows to fix (loaded by the run
before it publishes, read for the publication shown), their work status keyed by VSS code with
its history, what a night does to those statuses when it publishes, and the counts per
province. Personal data goes into these tables; none of it is ever logged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from popsync import store
from popsync.reference.provinces import SCHEME_63_TO_34
from popsync.text import folded_name, folded_names

rows_table, items, history_table = store.worklist_rows, store.work_items, store.work_history

# Work statuses (design.md "People and their decisions"). A row without an item is open.
OPEN = "open"
IN_PROGRESS = "in_progress"
CORRECTED = "corrected_at_source"
CONTACTED = "participant_contacted"
DISPUTED = "disputed"
CLOSED = "closed"
NOT_EFFECTIVE = "correction_not_effective"
# what a clerk may set; the night sets CLOSED and NOT_EFFECTIVE (and OPEN when a closed row is
# listed again)
CLERK_STATUSES = (IN_PROGRESS, CORRECTED, CONTACTED, DISPUTED, OPEN)
WORK_STATUSES = (OPEN, IN_PROGRESS, CORRECTED, CONTACTED, DISPUTED, NOT_EFFECTIVE, CLOSED)
BEING_WORKED = (IN_PROGRESS, CORRECTED, CONTACTED, DISPUTED)
NIGHT_USER = "popsync"  # who a night's changes are recorded as
MAX_NOTE = 2000
# The rows of this many latest publications are kept (and those of runs still building theirs):
# a night's rows at national scale are ~3M, and the portal shows the latest publication (an
# earlier one only while the latest's folder is incomplete).
KEEP_NIGHTS = 3
LINES = ("si_compulsory", "si_voluntary", "hi", "ui")
SORTS = {"vss_code": "vss_code", "name": "folded_name"}  # both indexed per province
PAGE_SIZES = (25, 50, 100, 200)
COUNT_CAP = 1_000  # a search or filter's matches are counted up to this many
# the columns a night loads (``load``), in this order
LOADED = tuple(c.name for c in rows_table.columns if c.name not in (
    "run_id", "unit_34", "folded_name"))


class WorkStatusError(ValueError):
    """A status change that cannot be recorded as asked."""


# --- loading a night's rows --------------------------------------------------------------------


def prune(engine: sa.Engine, keep: int = KEEP_NIGHTS) -> int:
    """Remove the rows of every run but the latest ``keep`` publications' and the runs still
    running (a run building its rows now); returns the rows removed."""
    pubs, runs = store.publications, store.runs
    with engine.begin() as connection:
        kept = set(connection.execute(
            sa.select(pubs.c.run_id).order_by(pubs.c.run_date.desc()).limit(keep)).scalars())
        kept |= set(connection.execute(
            sa.select(runs.c.run_id).where(runs.c.status == "running")).scalars())
        loaded = set(connection.execute(sa.select(rows_table.c.run_id).distinct()).scalars())
        removed = 0
        for run_id in sorted(loaded - kept):
            removed += connection.execute(
                rows_table.delete().where(rows_table.c.run_id == run_id)).rowcount
    return removed


COLUMNS = tuple(c.name for c in rows_table.columns)  # a loaded row's values, in this order


def _rows(run_id: int, batch: pa.RecordBatch) -> list[tuple]:
    """A batch of the night's rows (``LOADED`` columns; ``reasons`` a list) as table rows, in
    ``COLUMNS`` order; built a column at a time."""
    table = pa.Table.from_batches([batch])
    units = [SCHEME_63_TO_34.get(c, c) for c in table["province_code"].to_pylist()]
    vss_codes = table["vss_code"].to_pylist()
    # the person's registrations but this one
    others = [None if not codes else ",".join(c for c in codes.split(",") if c != own) or None
              for codes, own in zip(table["other_vss_codes"].to_pylist(), vss_codes,
                                    strict=True)]
    values = {
        "run_id": [run_id] * table.num_rows,
        "vss_code": vss_codes,
        "unit_34": units,
        "reasons": pc.fill_null(pc.binary_join(table["reasons"], ","), "").to_pylist(),
        "folded_name": folded_names(table["full_name"]).cast(pa.string()).to_pylist(),
        "other_vss_codes": others,
        **{line: pc.fill_null(table[line].cast(pa.bool_()), False).to_pylist()
           for line in LINES},
    }
    return list(zip(*(values[name] if name in values else table[name].to_pylist()
                      for name in COLUMNS), strict=True))


def _insert(connection: sa.Connection, rows: list[tuple]) -> None:
    """Rows in bulk, the driver's fastest way: PostgreSQL's COPY, SQLite's executemany of
    tuples: 23k and 25k rows a second against 9.5k and 17k with SQLAlchemy's insert of dicts
    (100k rows, 2026-12-02)."""
    raw = connection.connection.driver_connection
    names = ", ".join(COLUMNS)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {rows_table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    elif connection.dialect.name == "sqlite":
        raw.executemany(f"INSERT INTO {rows_table.name} ({names}) "
                        f"VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    else:
        connection.execute(rows_table.insert(),
                           [dict(zip(COLUMNS, row, strict=True)) for row in rows])


def load(engine: sa.Engine, run_id: int, batches: Iterable[pa.RecordBatch]) -> int:
    """Load a run's rows to fix, a batch per transaction (a retry first removes what an earlier
    attempt of the same run loaded). They stay unseen until the run publishes: the portal reads
    the rows of the run its publication names. Returns the rows loaded."""
    with engine.begin() as connection:
        connection.execute(rows_table.delete().where(rows_table.c.run_id == run_id))
    loaded = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        rows = _rows(run_id, batch)
        with engine.begin() as connection:
            _insert(connection, rows)
        loaded += len(rows)
    # fresh statistics, so the planner takes the ID indexes for an ID and the province's for
    # the rest (SQLite has none until asked; PostgreSQL's autovacuum may come later)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"ANALYZE {rows_table.name}")
    return loaded


# --- what a night does to the statuses ---------------------------------------------------------


def _change(connection: sa.Connection, vss_code: str, province_code: str, status: str,
            note: str | None, by: str, at: datetime, run_date: str | None) -> None:
    values = dict(province_code=province_code, status=status, note=note, changed_by=by,
                  changed_at=at, run_date=run_date)
    connection.execute(history_table.insert().values(vss_code=vss_code, **values))
    if connection.execute(items.update().where(items.c.vss_code == vss_code).values(**values)
                          ).rowcount == 0:
        connection.execute(items.insert().values(vss_code=vss_code, **values))


def settle(connection: sa.Connection, run_id: int, run_date: str, started_at: datetime,
           at: datetime | None = None) -> dict[str, int]:
    """In the transaction that publishes ``run_date`` (run ``run_id``, started at
    ``started_at``), the night's changes to the work statuses: a row no longer to fix is closed;
    a row marked corrected at source before the night started and still to fix is flagged
    'correction not effective'; a closed row to fix again is open again. A rerun of the date
    first takes back what the earlier publication of that date changed, so the outcome is the
    same however often a night is published. Only the latest night settles (a rerun of an
    earlier date changes nothing). Returns how many rows each change concerned."""
    at = at or datetime.now(UTC)
    pubs = store.publications
    later = connection.execute(
        sa.select(sa.func.count()).select_from(pubs).where(pubs.c.run_date > run_date)).scalar()
    if later:
        return {}
    _take_back(connection, run_date)
    listed = sa.select(rows_table.c.vss_code).where(
        rows_table.c.run_id == run_id, rows_table.c.vss_code == items.c.vss_code)
    started_at = started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)
    changes = {
        CLOSED: (items.c.status != CLOSED) & ~sa.exists(listed),
        NOT_EFFECTIVE: (items.c.status == CORRECTED) & (items.c.changed_at < started_at)
        & sa.exists(listed),
        OPEN: (items.c.status == CLOSED) & sa.exists(listed),
    }
    done = {}
    for status, condition in changes.items():
        found = connection.execute(
            sa.select(items.c.vss_code, items.c.province_code).where(condition)).all()
        # no note: the status and the night say it all (the portal explains it in its language)
        for vss_code, province_code in found:
            _change(connection, vss_code, province_code, status, None, NIGHT_USER, at,
                    run_date)
        done[status] = len(found)
    return done


def _take_back(connection: sa.Connection, run_date: str) -> None:
    """Undo a night's changes (its history rows go; each item back to its latest change
    before)."""
    touched = list(connection.execute(
        sa.select(history_table.c.vss_code).where(history_table.c.run_date == run_date)
        .distinct()).scalars())
    if not touched:
        return
    connection.execute(history_table.delete().where(history_table.c.run_date == run_date))
    for vss_code in touched:
        before = connection.execute(
            sa.select(history_table).where(history_table.c.vss_code == vss_code)
            .order_by(history_table.c.change_id.desc()).limit(1)).mappings().first()
        if before is None:
            connection.execute(items.delete().where(items.c.vss_code == vss_code))
        else:
            connection.execute(items.update().where(items.c.vss_code == vss_code).values(
                **{k: before[k] for k in ("province_code", "status", "note", "changed_by",
                                          "changed_at", "run_date")}))


# --- clerks ------------------------------------------------------------------------------------


def set_status(engine: sa.Engine, run_id: int, vss_code: str, status: str, note: str | None,
               by: str, at: datetime | None = None) -> None:
    """A clerk's change of a listed row's status, with a note; in the item and its history.
    The row must be in the list of run ``run_id`` (the publication the clerk sees)."""
    if status not in CLERK_STATUSES:
        raise WorkStatusError(f"unknown work status {status!r}: use one of "
                              f"{', '.join(CLERK_STATUSES)}")
    note = (note or "").strip()[:MAX_NOTE] or None
    with engine.begin() as connection:
        province = connection.execute(sa.select(rows_table.c.province_code).where(
            rows_table.c.run_id == run_id, rows_table.c.vss_code == vss_code)).scalar()
        if province is None:
            raise WorkStatusError("this row is not in the list of the publication shown")
        _change(connection, vss_code, province, status, note, by, at or datetime.now(UTC),
                None)


def item(engine: sa.Engine, vss_code: str) -> dict | None:
    """A row's current work status (None when it never had one)."""
    with engine.connect() as connection:
        found = connection.execute(sa.select(items).where(items.c.vss_code == vss_code)
                                   ).mappings().first()
    return dict(found) if found else None


def history(engine: sa.Engine, vss_code: str) -> list[dict]:
    """Every change of a row's status, latest first."""
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(
            sa.select(history_table).where(history_table.c.vss_code == vss_code)
            .order_by(history_table.c.change_id.desc())).mappings()]


# --- reading the list --------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    """What a clerk asks of a province's list: a search, filters, an order and a page."""

    q: str = ""
    status: str | None = None
    reason: str | None = None
    line: str | None = None
    employer: str | None = None
    ward: str | None = None
    work: str | None = None  # work status
    sort: str = "vss_code"
    order: str = "asc"
    page: int = 1
    per_page: int = 50


def _scope(scheme: str, code: str):
    """The rows of a province in a scheme (a 34-scheme unit by its own column and index)."""
    return rows_table.c.unit_34 == code if scheme == "34" else rows_table.c.province_code == code


def _search(q: str):
    """A VSS code (10 digits, or its first digits), a personal or old ID (12 or 9 digits), or
    the start of a name typed with or without diacritics, in any case."""
    q = q.strip()
    if not q:
        return None
    digits = q.replace(" ", "")
    if digits.isdigit():
        if len(digits) in (9, 12):
            return sa.or_(rows_table.c.national_id == digits, rows_table.c.personal_id == digits)
        if len(digits) == 10:
            return rows_table.c.vss_code == digits
        return sa.and_(rows_table.c.vss_code >= digits, rows_table.c.vss_code < digits + ":")
    folded = folded_name(q)
    if not folded:
        return None
    # a prefix as a range of the (byte-ordered) index: "nguyen van a" .. "nguyen van a\x7f"
    return sa.and_(rows_table.c.folded_name >= folded,
                   rows_table.c.folded_name < folded + "\x7f")


def _filters(query: ListQuery, run_id: int, scheme: str, code: str) -> list:
    where = [rows_table.c.run_id == run_id, _scope(scheme, code)]
    search = _search(query.q)
    if search is not None:
        where.append(search)
    if query.status:
        where.append(rows_table.c.status == query.status)
    if query.reason:
        where.append(("," + rows_table.c.reasons + ",").contains(f",{query.reason},",
                                                               autoescape=True))
    if query.line in LINES:
        where.append(rows_table.c[query.line].is_(True))
    if query.employer:
        where.append(rows_table.c.employer_code == query.employer)
    if query.ward:
        where.append(rows_table.c.ward_code == query.ward)
    if query.work:
        item = sa.select(items.c.status).where(
            items.c.vss_code == rows_table.c.vss_code).correlate_except(items).scalar_subquery()
        where.append(sa.func.coalesce(item, OPEN) == query.work)
    return where


_PAGE_COLUMNS = (rows_table.c.vss_code, rows_table.c.full_name, rows_table.c.birth_date,
                 rows_table.c.gender, rows_table.c.national_id, rows_table.c.province_code,
                 rows_table.c.status, rows_table.c.reasons, rows_table.c.ward_code,
                 rows_table.c.employer_code, rows_table.c.employer_name)


def _order(query: ListQuery) -> list:
    key = rows_table.c[SORTS.get(query.sort, "vss_code")]
    return [key.desc(), rows_table.c.vss_code.desc()] if query.order == "desc" else [
        key, rows_table.c.vss_code]


def _ordered(columns, query: ListQuery, where: list) -> sa.Select:
    """The rows ``where`` selects with their work status, in the query's order."""
    work = sa.func.coalesce(items.c.status, OPEN).label("work_status")
    return (sa.select(*columns, work)
            .select_from(rows_table.outerjoin(items, items.c.vss_code == rows_table.c.vss_code))
            .where(*where).order_by(*_order(query)))


def narrowed(query: ListQuery) -> bool:
    """Whether a search or a filter narrows the province's list."""
    return any((query.q.strip(), query.status, query.reason, query.line, query.employer,
                query.ward, query.work))


def page(engine: sa.Engine, run_id: int, scheme: str, code: str, query: ListQuery,
         listed: int | None = None) -> tuple[list[dict], int]:
    """One page of a province's rows with their work status, and how many rows match: the
    province's ``listed`` rows (``listed_counts``, read once a night) when nothing narrows the
    list, else counted, up to ``COUNT_CAP + 1`` (more than ``COUNT_CAP``: a count must not
    read a whole province's rows on every page). The page's keys are found first in the
    index of its order (a deep page skips index entries, not rows), then its rows read."""
    where = _filters(query, run_id, scheme, code)
    keys = (sa.select(rows_table.c.vss_code).where(*where).order_by(*_order(query))
            .limit(query.per_page).offset((query.page - 1) * query.per_page))
    select = _ordered(_PAGE_COLUMNS, query, [
        rows_table.c.run_id == run_id, rows_table.c.vss_code.in_(keys.scalar_subquery())])
    with engine.connect() as connection:
        rows = [dict(r) for r in connection.execute(select).mappings()]
        if listed is not None and not narrowed(query):
            total = listed
        else:
            matching = sa.select(rows_table.c.vss_code).where(*where).limit(COUNT_CAP + 1)
            total = connection.execute(
                sa.select(sa.func.count()).select_from(matching.subquery())).scalar_one()
    for row in rows:
        row["reasons"] = row["reasons"].split(",") if row["reasons"] else []
    return rows, total


def stream(engine: sa.Engine, run_id: int, scheme: str, code: str, query: ListQuery,
           batch_rows: int = 5000) -> Iterable[list[dict]]:
    """Every row a query matches, in its order, a batch at a time (for downloads)."""
    select = _ordered(rows_table.columns, query, _filters(query, run_id, scheme, code))
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=batch_rows).execute(select)
        for part in result.mappings().partitions():
            yield [dict(r) for r in part]


def choices(engine: sa.Engine, run_id: int, scheme: str, code: str, column: str,
            limit: int = 500) -> list[str]:
    """The values a filter may take in a province's list (employers, wards), at most ``limit``."""
    target = rows_table.c[column]
    with engine.connect() as connection:
        return list(connection.execute(
            sa.select(target).distinct().where(rows_table.c.run_id == run_id,
                                               _scope(scheme, code), target.is_not(None))
            .order_by(target).limit(limit)).scalars())


def row(engine: sa.Engine, run_id: int, vss_code: str) -> dict | None:
    """A listed row with its work status (None when it is not in the run's list)."""
    with engine.connect() as connection:
        found = connection.execute(sa.select(rows_table).where(
            rows_table.c.run_id == run_id, rows_table.c.vss_code == vss_code)).mappings().first()
        if found is None:
            return None
        item = connection.execute(sa.select(items).where(
            items.c.vss_code == vss_code)).mappings().first()
    found = dict(found)
    found["reasons"] = found["reasons"].split(",") if found["reasons"] else []
    found["other_vss_codes"] = (found["other_vss_codes"] or "").split(",") if found[
        "other_vss_codes"] else []
    found["work"] = dict(item) if item else None
    found["work_status"] = item["status"] if item else OPEN
    return found


def loaded(engine: sa.Engine, run_id: int | None) -> bool:
    """Whether the rows of a run were loaded (publications from before the work list have
    none)."""
    if run_id is None:
        return False
    with engine.connect() as connection:
        return connection.execute(sa.select(rows_table.c.vss_code).where(
            rows_table.c.run_id == run_id).limit(1)).first() is not None


# --- counts per province -----------------------------------------------------------------------


def listed_counts(engine: sa.Engine, run_id: int | None) -> dict[str, int]:
    """Rows to fix per province (63) in a run's list: what changes only with a new night."""
    if run_id is None:
        return {}
    query = (sa.select(rows_table.c.province_code, sa.func.count())
             .where(rows_table.c.run_id == run_id).group_by(rows_table.c.province_code))
    with engine.connect() as connection:
        return {code: n for code, n in connection.execute(query)}


def work_counts(engine: sa.Engine, run_id: int | None, run_date: str | None
                ) -> dict[str, dict[str, int]]:
    """Per province (63): the run's listed rows being worked on (``in_progress``) and with a
    correction not effective, and the rows the nights of the 7 days up to ``run_date`` closed
    (``closed_week``). Reads the statuses, a small table, on every call: clerks change them."""
    if run_id is None or run_date is None:
        return {}
    week_from = (date.fromisoformat(run_date) - timedelta(days=6)).isoformat()
    # driven by the statuses (few), each looked up in the run's rows by its key
    in_list = sa.exists().where(rows_table.c.run_id == run_id,
                                rows_table.c.vss_code == items.c.vss_code)
    listed = (sa.select(items.c.province_code, items.c.status, sa.func.count())
              .where(items.c.status.in_([*BEING_WORKED, NOT_EFFECTIVE]), in_list)
              .group_by(items.c.province_code, items.c.status))
    closed = (sa.select(items.c.province_code, sa.func.count())
              .where(items.c.status == CLOSED, items.c.run_date >= week_from,
                     items.c.run_date <= run_date)
              .group_by(items.c.province_code))
    counts: dict[str, dict[str, int]] = {}

    def of(code: str) -> dict[str, int]:
        return counts.setdefault(code, dict(in_progress=0, not_effective=0, closed_week=0))

    with engine.connect() as connection:
        for code, status, n in connection.execute(listed):
            of(code)["in_progress" if status in BEING_WORKED else "not_effective"] += n
        for code, n in connection.execute(closed):
            of(code)["closed_week"] += n
    return counts


def province_counts(listed: dict[str, int], work: dict[str, dict[str, int]], scheme: str
                    ) -> dict[str, dict[str, int]]:
    """Per province of the scheme: rows to fix no one works on (``open``, the corrections not
    effective among them), being worked on (``in_progress``), corrections not effective, and
    closed in the last 7 days; from ``listed_counts`` and ``work_counts``."""
    by_63 = {}
    for code in set(listed) | set(work):
        figures = dict(in_progress=0, not_effective=0, closed_week=0) | work.get(code, {})
        by_63[code] = {"open": listed.get(code, 0) - figures["in_progress"], **figures}
    if scheme == "63":
        return by_63
    by_34: dict[str, dict[str, int]] = {}
    for code, figures in by_63.items():
        unit = by_34.setdefault(SCHEME_63_TO_34.get(code, code), dict.fromkeys(figures, 0))
        for key, value in figures.items():
            unit[key] += value
    return by_34
