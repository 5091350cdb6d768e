"""What the nightly run published, read for the portal: run states, rankings, a province's
figures and trend, and where its list files are."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from popsync import store
from popsync.contracts import AGE_BANDS, GENDERS, STATUSES, UNKNOWN
from popsync.reference import PROVINCES_34, PROVINCES_63, province_name

PUBLIC_COLUMNS = ("participants", "synchronized", "sync_rate", "rank", "change")
# Written into a publication's staging folder after its lists and results, then moved into place
# with the folder (pipelines/publish.py, MANIFEST there).
MANIFEST = "manifest.json"
STATUS_COLUMNS = STATUSES  # synchronized, needs_correction, needs_review, unmatched


def _value(value):
    """NaN (a float no JSON can carry) read back as missing, like NULL."""
    return None if isinstance(value, float) and math.isnan(value) else value


def provinces_of(scheme: str) -> dict:
    return PROVINCES_63 if scheme == "63" else PROVINCES_34


@dataclass(frozen=True)
class RunState:
    """The publication to show and what happened to the latest attempt."""

    run_date: str | None  # the latest complete publication, None when there is none
    path: str | None
    published_at: datetime | None
    latest_run: dict | None  # the latest attempt (any status)
    # Later publications the database holds but whose folder is not whole: not shown.
    incomplete: tuple[str, ...] = ()
    # How many publications there are and the latest time one was made: changes with any
    # publication (a rerun of an earlier date changes the trends without changing the latest).
    publications_version: tuple = ()
    run_id: int | None = None  # the run that made the publication shown (its work list rows)

    @property
    def latest_failed(self) -> bool:
        # abandoned: killed or lost, found dead by a later run
        return self.latest_run is not None and self.latest_run["status"] in ("failed",
                                                                              "abandoned")

    @property
    def running(self) -> bool:
        return self.latest_run is not None and self.latest_run["status"] == "running"


def is_complete(data_dir: Path, publication: dict) -> bool:
    """Whether a publication's folder is whole: there, with the manifest of the run the database
    says published it. A crash between publishing's two renames leaves no folder at all, or,
    when the new folder went in but the database still names the old run, the wrong one."""
    try:
        folder = _inside(data_dir, publication["path"])
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not JSON, or outside the data folder
        return False
    return isinstance(manifest, dict) and manifest.get("run_id") == publication["run_id"]


def run_state(engine: sa.Engine, data_dir: Path) -> RunState:
    """The latest complete publication (the later, incomplete ones named) and the latest run."""
    pubs, runs = store.publications, store.runs
    incomplete = []
    pub = None
    with engine.connect() as conn:
        for row in conn.execute(sa.select(pubs).order_by(pubs.c.run_date.desc())).mappings():
            if is_complete(data_dir, row):
                pub = row
                break
            incomplete.append(row["run_date"])
        latest = conn.execute(
            sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(1)
        ).mappings().first()
        version = conn.execute(
            sa.select(sa.func.count(), sa.func.max(pubs.c.published_at))).one()
    return RunState(
        pub["run_date"] if pub else None,
        pub["path"] if pub else None,
        pub["published_at"] if pub else None,
        dict(latest) if latest else None,
        tuple(incomplete),
        tuple(version),
        pub["run_id"] if pub else None,
    )


@dataclass
class Ranking:
    scheme: str
    line: str
    run_date: str | None
    provinces: list[dict] = field(default_factory=list)


def ranking(engine: sa.Engine, run_date: str | None, scheme: str, line: str) -> Ranking:
    """Every province's public figures in the publication of ``run_date``, best rank first."""
    result = Ranking(scheme, line, run_date)
    if run_date is None:
        return result
    m = store.metrics
    query = (
        sa.select(m.c.province_code, *(m.c[name] for name in PUBLIC_COLUMNS))
        .where(m.c.run_date == run_date, m.c.scheme == scheme, m.c.line == line)
        .order_by(m.c.rank, m.c.province_code)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    table = provinces_of(scheme)
    result.provinces = [
        {
            "code": row["province_code"],
            "name": table[row["province_code"]].name if row["province_code"] in table
            else row["province_code"],
            **{name: _value(row[name]) for name in PUBLIC_COLUMNS},
        }
        for row in rows
    ]
    return result


def national_trend(
    engine: sa.Engine, run_date: str | None, scheme: str, line: str, limit: int
) -> list[dict]:
    """The national rate of the last ``limit`` publications up to ``run_date`` (the one shown),
    oldest first."""
    if run_date is None:
        return []
    m, pubs = store.metrics, store.publications
    query = (
        sa.select(
            m.c.run_date,
            sa.func.sum(m.c.participants).label("participants"),
            sa.func.sum(m.c.synchronized).label("synchronized"),
        )
        .join(pubs, pubs.c.run_date == m.c.run_date)
        .where(m.c.scheme == scheme, m.c.line == line, m.c.run_date <= run_date)
        .group_by(m.c.run_date)
        .order_by(m.c.run_date.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        {
            "run_date": row["run_date"],
            "participants": int(row["participants"]),
            "synchronized": int(row["synchronized"]),
            "sync_rate": row["synchronized"] / row["participants"] if row["participants"] else None,
        }
        for row in reversed(rows)
    ]


def province_detail(
    engine: sa.Engine, run_date: str, scheme: str, province_code: str, trend_limit: int
) -> dict:
    """A province's figures per line, its counts by status and reason, and its trend up to
    ``run_date``."""
    m, rc, pubs = store.metrics, store.reason_counts, store.publications
    with engine.connect() as conn:
        lines = conn.execute(
            sa.select(m).where(
                m.c.run_date == run_date, m.c.scheme == scheme, m.c.province_code == province_code
            )
        ).mappings().all()
        reasons = conn.execute(
            sa.select(rc.c.status, rc.c.reason, rc.c["count"])
            .where(
                rc.c.run_date == run_date,
                rc.c.scheme == scheme,
                rc.c.province_code == province_code,
            )
            .order_by(rc.c["count"].desc(), rc.c.reason)
        ).mappings().all()
        trend = conn.execute(
            sa.select(m.c.run_date, m.c.sync_rate, m.c.rank, m.c.participants, m.c.synchronized)
            .join(pubs, pubs.c.run_date == m.c.run_date)
            .where(m.c.scheme == scheme, m.c.line == "all", m.c.province_code == province_code,
                   m.c.run_date <= run_date)
            .order_by(m.c.run_date.desc())
            .limit(trend_limit)
        ).mappings().all()
    figure_columns = ("participants", *STATUS_COLUMNS[1:], "synchronized", "sync_rate", "rank",
                      "change")
    return {
        "code": province_code,
        "scheme": scheme,
        "name": province_name(province_code, scheme),
        "run_date": run_date,
        "lines": {row["line"]: {name: _value(row[name]) for name in figure_columns}
                  for row in lines},
        "reasons": [dict(row) for row in reasons],
        "trend": [{key: _value(value) for key, value in row.items()} for row in reversed(trend)],
    }


def list_file(data_dir: Path, publication_path: str, scheme: str, code: str, fmt: str) -> Path:
    """The file of a province's list inside the publication folder.

    ``scheme`` and ``code`` are checked against the province tables by the caller; the resolved
    path is still required to stay inside the publication folder, which itself must stay inside
    the data folder, so nothing in a URL or in the database can point elsewhere.
    """
    publication = _inside(data_dir, publication_path)
    path = (publication / store.list_path(scheme, code, fmt)).resolve()
    if not path.is_relative_to(publication):
        raise FileNotFoundError(path)
    return path


def _inside(data_dir: Path, publication_path: str) -> Path:
    """A publication's folder, which must stay inside the data folder."""
    root = data_dir.resolve()
    publication = (root / publication_path).resolve()
    if not publication.is_relative_to(root):
        raise FileNotFoundError(publication)
    return publication


# --- leadership: headline, province trends, breakdowns, coverage -------------------------------

CHANGE_NIGHTS = (1, 7, 30)  # the headline's changes: since yesterday, a week, a month


def headline(trend: list[dict], run_date: str | None) -> dict | None:
    """The national figures of ``run_date`` from its trend (``national_trend``, oldest first):
    rate, participants still to fix, and the change since the publication 1, 7 and 30 nights
    before (the latest one on or before that date; None when there is none)."""
    if not trend or run_date is None or trend[-1]["run_date"] != run_date:
        return None
    today = trend[-1]
    day = datetime.fromisoformat(run_date).date()
    changes = {}
    for nights in CHANGE_NIGHTS:
        cutoff = (day - timedelta(days=nights)).isoformat()
        before = [p for p in trend[:-1] if p["run_date"] <= cutoff]
        point = before[-1] if before else None
        changes[nights] = None if point is None or point["sync_rate"] is None or \
            today["sync_rate"] is None else {
                "run_date": point["run_date"], "change": today["sync_rate"] - point["sync_rate"]}
    return {
        "run_date": run_date,
        "participants": today["participants"],
        "synchronized": today["synchronized"],
        "to_fix": today["participants"] - today["synchronized"],
        "sync_rate": today["sync_rate"],
        "changes": changes,
    }


def province_trends(
    engine: sa.Engine, run_date: str | None, scheme: str, line: str, limit: int
) -> dict[str, list[tuple[str, float]]]:
    """Each province's (run date, sync rate) over the last ``limit`` publications up to
    ``run_date``, oldest first: one query for every province's sparkline."""
    if run_date is None:
        return {}
    m, pubs = store.metrics, store.publications
    query = (
        sa.select(m.c.province_code, m.c.run_date, m.c.sync_rate)
        .where(m.c.scheme == scheme, m.c.line == line, m.c.run_date.in_(
            sa.select(pubs.c.run_date).where(pubs.c.run_date <= run_date)
            .order_by(pubs.c.run_date.desc()).limit(limit)))
        .order_by(m.c.province_code, m.c.run_date)
    )
    trends: dict[str, list[tuple[str, float]]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            trends.setdefault(row.province_code, []).append((row.run_date, row.sync_rate))
    return trends


def breakdowns(
    engine: sa.Engine, run_date: str | None, scheme: str, line: str | None,
    province_code: str | None = None, by_province: bool = False,
) -> dict:
    """Participants and sync rate per age band and per gender, of one province or (None) the
    nation (its provinces added up), as the night stored them: ``{dimension: [group]}``.
    ``line`` None: every line, ``{line: {dimension: [group]}}``; ``by_province``: the nation's
    and every province's, ``{line: {province or None: {dimension: [group]}}}`` (one query)."""
    if run_date is None:
        return {}
    b = store.breakdowns
    counts = [sa.func.sum(b.c[c]).label(c) for c in ("participants", *STATUS_COLUMNS)]
    keys = [b.c.line, b.c.dimension, b.c.value]
    if by_province:
        keys.append(b.c.province_code)
    query = (
        sa.select(*keys, *counts)
        .where(b.c.run_date == run_date, b.c.scheme == scheme)
        .group_by(*keys)
    )
    if line is not None:
        query = query.where(b.c.line == line)
    if province_code is not None:
        query = query.where(b.c.province_code == province_code)
    result: dict = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            group = {c: int(row[c]) for c in ("participants", *STATUS_COLUMNS)}
            places = [None, row["province_code"]] if by_province else [None]
            for place in places:
                groups = result.setdefault(row["line"], {}).setdefault(place, {}).setdefault(
                    row["dimension"], {})
                total = groups.setdefault(row["value"], dict.fromkeys(group, 0))
                for key, value in group.items():
                    total[key] += value
    for by_place in result.values():
        for place, dimensions in by_place.items():
            by_place[place] = {
                dimension: [
                    {"value": value, **group, "sync_rate": group["synchronized"] /
                     group["participants"] if group["participants"] else None}
                    for value, group in sorted(groups.items(),
                                               key=lambda item: _GROUP_ORDER.get(item[0], 99))]
                for dimension, groups in dimensions.items()}
    if by_province:
        return result
    nation = {line_: by_place[None] for line_, by_place in result.items()}
    return nation if line is None else nation.get(line, {})


_GROUP_ORDER = {value: i for i, value in enumerate((*AGE_BANDS, *GENDERS, UNKNOWN))}


def coverage(
    engine: sa.Engine, run_date: str | None, scheme: str, line: str, age_band: str = "all"
) -> list[dict]:
    """Every province's coverage (residents, covered, rate, rank) for a line and age band,
    best rank first."""
    if run_date is None:
        return []
    c = store.coverage
    query = (
        sa.select(c.c.province_code, c.c.residents, c.c.covered, c.c.coverage_rate, c.c.rank)
        .where(c.c.run_date == run_date, c.c.scheme == scheme, c.c.line == line,
               c.c.age_band == age_band)
        .order_by(c.c.rank, c.c.province_code)
    )
    table = provinces_of(scheme)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        {"code": row["province_code"],
         "name": table[row["province_code"]].name if row["province_code"] in table
         else row["province_code"],
         "residents": row["residents"], "covered": row["covered"],
         "uncovered": row["residents"] - row["covered"],
         "coverage_rate": row["coverage_rate"], "rank": row["rank"]}
        for row in rows
    ]


def province_coverage(
    engine: sa.Engine, run_date: str, scheme: str, province_code: str
) -> dict[str, dict[str, dict]]:
    """A province's coverage per line and age band: ``{line: {age_band: figures}}``."""
    c = store.coverage
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c).where(c.c.run_date == run_date, c.c.scheme == scheme,
                               c.c.province_code == province_code)
        ).mappings().all()
    result: dict[str, dict[str, dict]] = {}
    for row in rows:
        result.setdefault(row["line"], {})[row["age_band"]] = {
            key: row[key] for key in ("residents", "covered", "coverage_rate", "rank")}
    return result


def employer_file(data_dir: Path, publication_path: str, scheme: str, code: str,
                  fmt: str) -> Path:
    """A province's employer workbooks (``zip``: Mẫu 02 and Mẫu 01, one workbook per employer)
    or their index (``csv``), inside the publication; the night writes them only with
    ``output.employer_workbooks`` on."""
    if fmt not in ("zip", "csv"):
        raise FileNotFoundError(fmt)
    publication = _inside(data_dir, publication_path)
    path = (publication / store.employers_path(scheme, code)).resolve()
    if fmt == "csv":
        path = path.with_name(store.EMPLOYER_INDEX)
    if not path.is_relative_to(publication):
        raise FileNotFoundError(path)
    return path


def employer_workbook(data_dir: Path, publication_path: str, scheme: str, code: str,
                      employer: str) -> tuple[Path, str] | None:
    """One employer's workbook in the publication: the province's zip and the member in it,
    None when there is none."""
    publication = _inside(data_dir, publication_path)
    found = store.employer_workbook(publication, scheme, code, employer)
    if found is None or not found[0].resolve().is_relative_to(publication):
        return None
    return found


def uninsured_file(data_dir: Path, publication_path: str, scheme: str, code: str,
                   fmt: str) -> Path:
    """A province's list of residents without health insurance, inside the publication."""
    publication = _inside(data_dir, publication_path)
    path = (publication / store.uninsured_list_path(scheme, code, fmt)).resolve()
    if not path.is_relative_to(publication):
        raise FileNotFoundError(path)
    return path
