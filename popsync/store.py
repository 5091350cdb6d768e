"""The publication database schema (SQLAlchemy Core), shared by the nightly run (writer) and the
portal (reader), and where a run's files live under the output folder."""

from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa

metadata = sa.MetaData()

# One row per attempt of a run date; history is kept, reruns add rows.
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_date", sa.String(10), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),  # running | succeeded | failed | abandoned
    sa.Column("message", sa.Text),
    sa.Column("participants", sa.Integer),
    sa.Column("quarantined", sa.Integer),
    sa.Column("sync_rate", sa.Float),
    sa.Column("stopped_by", sa.String(32)),  # the validation gate that stopped it (migration 0002)
)

# Who is running a run date now: one row per run date, held by one run from its start until it
# publishes or fails for good. The primary key makes taking it atomic on every database, so two
# runs of one date never interleave, whichever hosts their tasks run on. Each step of the holder
# renews ``heartbeat_at``; a lock not renewed for hours belongs to a run that died unseen.
run_locks = sa.Table(
    "run_locks",
    metadata,
    sa.Column("run_date", sa.String(10), primary_key=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("holder", sa.Text, nullable=False),  # host and process that started the run
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per task a run executed (a step, or one piece of a fanned-out step), written as it
# ends, for the engineers' run page: when, on which host and process, how long, whether it
# failed. An Airflow retry adds a row, so a label's rows are its attempts (migration 0006).
run_tasks = sa.Table(
    "run_tasks",
    metadata,
    sa.Column("task_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False, index=True),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),  # the step, or step-piece
    sa.Column("host", sa.String(200), nullable=False),  # host:pid
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cpu_seconds", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # succeeded | failed
    sa.Column("message", sa.Text),  # a failure's first line (never row values)
)

# One row per validation gate a run reached: passed or stopped, with its figures (suites, rows,
# failed expectations with counts, quarantined rows by source and reason; never row values).
run_gates = sa.Table(
    "run_gates",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("gate", sa.String(32), primary_key=True),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("figures", sa.JSON, nullable=False),
)

# One row per published run date: a rerun replaces it. Files are under ``path`` (relative to
# the output folder). The latest good publication is the one with the greatest run_date.
publications = sa.Table(
    "publications",
    metadata,
    sa.Column("run_date", sa.String(10), primary_key=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
)


def _status_counts() -> list[sa.Column]:
    """Participants by status and the sync rate, of a metrics or a breakdowns row."""
    return [
        sa.Column(name, sa.Integer, nullable=False)
        for name in ("participants", "synchronized", "needs_correction", "needs_review",
                     "unmatched")
    ] + [sa.Column("sync_rate", sa.Float, nullable=False)]


# Per run date x scheme x line x province (design.md "Metrics").
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("run_date", sa.String(10), primary_key=True),
    sa.Column("scheme", sa.String(2), primary_key=True),
    sa.Column("line", sa.String(16), primary_key=True),
    sa.Column("province_code", sa.String(2), primary_key=True),
    *_status_counts(),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("change", sa.Float),  # sync_rate minus the previous publication's; null if none
)

# Per run date x scheme x province x status x reason: rows carrying that reason.
reason_counts = sa.Table(
    "reason_counts",
    metadata,
    sa.Column("run_date", sa.String(10), primary_key=True),
    sa.Column("scheme", sa.String(2), primary_key=True),
    sa.Column("province_code", sa.String(2), primary_key=True),
    sa.Column("status", sa.String(20), primary_key=True),
    sa.Column("reason", sa.String(32), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

# Reviewers' decisions (design.md "People and their decisions"), keyed by VSS code and personal
# ID, never by a night's row, so they survive reruns and new nights. A decision is never updated
# but to close it: revoked by a reviewer, or superseded by a newer decision on its row
# (``revoked_*`` say who, when and why), so the table is its own history and audit trail. The
# night reads the standing ones (popsync.decisions).
review_decisions = sa.Table(
    "review_decisions",
    metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("vss_code", sa.String(10), nullable=False, index=True),
    # the person decided about; for not_in_population the one shown to the reviewer, if any
    sa.Column("personal_id", sa.String(12)),
    sa.Column("decision", sa.String(20), nullable=False),  # contracts.DECISIONS
    sa.Column("decided_by", sa.String(64), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text),  # why
    sa.Column("revoked_at", sa.DateTime(timezone=True), index=True),
    sa.Column("revoked_by", sa.String(64)),
    sa.Column("revoke_note", sa.Text),
    # the row's registering office and its 34-scheme unit when decided, which scope the
    # decision log to a province's reviewers (migration 0008; null before it)
    sa.Column("province_code", sa.String(2)),
    sa.Column("unit_34", sa.String(2)),
)

# Per run date x scheme x line x province x dimension (age_band | gender) x value: the status
# counts of that group of participants (pipelines/breakdowns.py).
breakdowns = sa.Table(
    "breakdowns",
    metadata,
    sa.Column("run_date", sa.String(10), primary_key=True),
    sa.Column("scheme", sa.String(2), primary_key=True),
    sa.Column("line", sa.String(16), primary_key=True),
    sa.Column("province_code", sa.String(2), primary_key=True),
    sa.Column("dimension", sa.String(16), primary_key=True),
    sa.Column("value", sa.String(16), primary_key=True),
    *_status_counts(),
)

# Per run date x scheme x line x province of permanent residence x age band (``all`` too): the
# living residents, those linked to a registration of the line, the rate and its rank among
# provinces (pipelines/coverage.py).
coverage = sa.Table(
    "coverage",
    metadata,
    sa.Column("run_date", sa.String(10), primary_key=True),
    sa.Column("scheme", sa.String(2), primary_key=True),
    sa.Column("line", sa.String(16), primary_key=True),
    sa.Column("province_code", sa.String(2), primary_key=True),
    sa.Column("age_band", sa.String(16), primary_key=True),
    sa.Column("residents", sa.Integer, nullable=False),
    sa.Column("covered", sa.Integer, nullable=False),
    sa.Column("coverage_rate", sa.Float, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
)

# The night's rows to fix, one per registry row not synchronized, loaded by the run that
# computed them (``run_id``) before it publishes: the portal reads the rows of the run its shown
# publication names, so a run that fails leaves the published rows as they were, and a rerun's
# rows replace them in the same commit that replaces the publication (popsync.worklist). Only
# the latest few publications' rows are kept. ``folded_name``: the name lower-cased without
# diacritics (đ -> d) for the search; byte order (collation C on PostgreSQL) so that a prefix is
# a range of the index.
FILTERED = ("status", "si_compulsory", "si_voluntary", "hi", "ui", "ward_code", "employer_code",
            "reasons")
FOLDED = sa.String(160).with_variant(sa.String(160, collation="C"), "postgresql")
worklist_rows = sa.Table(
    "worklist_rows",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("vss_code", sa.String(10), primary_key=True),
    sa.Column("province_code", sa.String(2), nullable=False),  # the registering office (63)
    sa.Column("unit_34", sa.String(2), nullable=False),  # its 34-scheme unit
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),  # reason codes, comma-separated
    sa.Column("full_name", sa.Text),
    sa.Column("folded_name", FOLDED, nullable=False),
    sa.Column("birth_date", sa.String(10)),
    sa.Column("gender", sa.String(1)),
    sa.Column("national_id", sa.String(32)),
    sa.Column("personal_id", sa.String(12)),  # the linked (or best candidate) person
    sa.Column("match_probability", sa.Float),
    sa.Column("suggested_full_name", sa.Text),
    sa.Column("suggested_birth_date", sa.String(10)),
    sa.Column("suggested_gender", sa.String(1)),
    sa.Column("suggested_national_id", sa.String(12)),
    sa.Column("si_compulsory", sa.Boolean, nullable=False),
    sa.Column("si_voluntary", sa.Boolean, nullable=False),
    sa.Column("hi", sa.Boolean, nullable=False),
    sa.Column("ui", sa.Boolean, nullable=False),
    sa.Column("ward_code", sa.String(16)),
    sa.Column("employer_code", sa.String(32)),
    sa.Column("employer_name", sa.Text),
    sa.Column("other_vss_codes", sa.Text),  # the same person's other registrations, comma-sep.
    # the best candidate's match weight, field by field (the results' ``explanation`` JSON), for
    # the review queue's waterfall (migration 0007)
    sa.Column("explanation", sa.Text),
    # a row in review: its best candidates (up to 5) with their probabilities and weights, the
    # results' ``candidates`` JSON, for the review queue (migration 0009)
    sa.Column("candidates", sa.Text),
    # by VSS code, with the filters' columns after it: a filtered page and its count read the
    # index alone, not a row per entry
    sa.Index("ix_worklist_rows_province_vss", "run_id", "province_code", "vss_code",
             *FILTERED),
    # the name's indexes end with the VSS code, the order's tie-break: a page's keys are read
    # from the index alone
    sa.Index("ix_worklist_rows_province_name", "run_id", "province_code", "folded_name",
             "vss_code"),
    sa.Index("ix_worklist_rows_unit_vss", "run_id", "unit_34", "vss_code", *FILTERED),
    sa.Index("ix_worklist_rows_unit_name", "run_id", "unit_34", "folded_name", "vss_code"),
    sa.Index("ix_worklist_rows_national_id", "run_id", "national_id"),
    sa.Index("ix_worklist_rows_personal_id", "run_id", "personal_id"),
)

# A list row's work status as the clerks set it (design.md "People and their decisions"), keyed
# by VSS code, never by a night's row, so it survives reruns: the current status of each code
# that was ever given one, and every change (a clerk's, or a night's closing or flagging) in
# ``work_history``. ``province_code``: the office that listed the row when it last changed.
def work_change_columns(indexed: bool) -> list[sa.Column]:
    """A work status change: where, what, why, who, when, and the night that made it (null for
    a clerk's); of ``work_items`` (indexed by province) and ``work_history`` (by night)."""
    return [
        sa.Column("province_code", sa.String(2), nullable=False, index=indexed),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_date", sa.String(10), index=not indexed),
    ]


work_items = sa.Table(
    "work_items",
    metadata,
    sa.Column("vss_code", sa.String(10), primary_key=True),
    *work_change_columns(indexed=True),
)
work_history = sa.Table(
    "work_history",
    metadata,
    sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("vss_code", sa.String(10), nullable=False, index=True),
    *work_change_columns(indexed=False),
)

DB_FILE = "popsync.db"


def default_db_url(out_dir: str | Path) -> str:
    """The embedded default: SQLite in the output folder."""
    return f"sqlite:///{Path(out_dir).resolve() / DB_FILE}"


def database_down(exc: BaseException) -> bool:
    """Whether an error says the publication database cannot be reached (or is too busy) now,
    not that the code is wrong: worth retrying once the database is back."""
    return isinstance(exc, sa.exc.OperationalError | sa.exc.TimeoutError) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated)


def first_line(exc: BaseException) -> str:
    """An error's first line (the driver's own message for a database error)."""
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]


def unreachable(db_url: str | sa.URL, exc: BaseException) -> str:
    """'the publication database <URL without password> cannot be reached (<why>)'."""
    shown = sa.make_url(db_url).render_as_string(hide_password=True)
    return f"the publication database {shown} cannot be reached ({first_line(exc)})"


def engine_for(db_url: str) -> sa.Engine:
    """An engine on the publication database; a new empty one gets its tables (an existing one
    must be at the current schema version: ``popsync db upgrade``)."""
    from popsync import migrate

    engine = sa.create_engine(db_url, future=True)
    migrate.prepare(engine)
    return engine


# Layout of one publication, relative to the output folder.
PUBLICATIONS_DIR = "publications"


def publication_path(run_date: str) -> str:
    return f"{PUBLICATIONS_DIR}/{run_date}"


def work_path(run_date: str, run_id: int) -> str:
    """A run's work folder, relative to the output folder (a failed run's report stays there)."""
    return f"work/{run_date}-r{run_id}"


def list_path(scheme: str, province_code: str, fmt: str) -> str:
    """A province's list in a publication folder: ``lists/<scheme>/<code>/unsynchronized.<fmt>``."""
    if fmt not in ("xlsx", "csv"):
        raise ValueError(f"unknown list format {fmt!r}: use 'xlsx' or 'csv'")
    return f"lists/{scheme}/{province_code}/unsynchronized.{fmt}"


EMPLOYER_ZIP, EMPLOYER_INDEX = "employers.zip", "employers.csv"


def employers_path(scheme: str, province_code: str) -> Path:
    """A province's zip of employer workbooks (Mẫu 02, Mẫu 01), relative to its publication
    folder: ``employers/<scheme>/<code>/employers.zip``, its index ``employers.csv`` beside
    it."""
    return Path("employers") / scheme / province_code / EMPLOYER_ZIP


def employer_workbook(publication: Path, scheme: str, province_code: str,
                      employer_code: str) -> tuple[Path, str] | None:
    """Where one employer's workbook is in a publication: the province's zip and the
    workbook's name in it; None when the province or the employer has none. Read it with
    ``zipfile.ZipFile(path).open(member)``. The index is read line by line (a province has up
    to some 100,000 employers)."""
    target = Path(publication) / employers_path(scheme, province_code)
    index = target.with_name(EMPLOYER_INDEX)
    if not index.is_file():
        return None
    with open(index, encoding="utf-8-sig", newline="") as rows:
        for row in csv.reader(rows):
            if row and row[0] == employer_code:
                return target, row[4]
    return None


def uninsured_list_path(scheme: str, province_code: str, fmt: str) -> str:
    """A province's list of living residents without health insurance, in a publication
    folder: ``coverage/<scheme>/<code>/uninsured.<fmt>``."""
    if fmt not in ("xlsx", "csv"):
        raise ValueError(f"unknown list format {fmt!r}: use 'xlsx' or 'csv'")
    return f"coverage/{scheme}/{province_code}/uninsured.{fmt}"
