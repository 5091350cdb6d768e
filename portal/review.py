"""The review queue: the rows of the publication shown that a person must decide, in a
reviewer's scope. A row is in the queue when the night left it ``needs_review`` or a clerk
disputed its link (work status ``disputed``), and no decision on it was taken since that night
started (the next night applies it; a night that finds a decision contradicted puts the row
back). Disputed rows come first (a clerk waits on them), then the likeliest links, whose
decision settles a row soonest."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from popsync import store
from popsync.contracts import NEEDS_REVIEW
from popsync.worklist import DISPUTED

rows, items, decisions = store.worklist_rows, store.work_items, store.review_decisions
PAGE = 50


@dataclass(frozen=True)
class Scope:
    """A reviewer's rows: every row (``code`` None), a 63-scheme province's or a 34-scheme
    unit's."""

    code: str | None = None
    scheme: str | None = None

    def condition(self):
        if self.code is None:
            return sa.true()
        return (rows.c.unit_34 if self.scheme == "34" else rows.c.province_code) == self.code


def _started(connection: sa.Connection, run_id: int):
    return connection.execute(sa.select(store.runs.c.started_at).where(
        store.runs.c.run_id == run_id)).scalar()


def _queued(run_id: int, started, scope: Scope):
    disputed = sa.exists(sa.select(items.c.vss_code).where(
        items.c.vss_code == rows.c.vss_code, items.c.status == DISPUTED))
    decided = sa.exists(sa.select(decisions.c.decision_id).where(
        decisions.c.vss_code == rows.c.vss_code, decisions.c.revoked_at.is_(None),
        decisions.c.decided_at >= started))
    return disputed, sa.and_(rows.c.run_id == run_id, scope.condition(),
                             sa.or_(rows.c.status == NEEDS_REVIEW, disputed), ~decided)


def queue(engine: sa.Engine, run_id: int, scope: Scope, page: int = 1) -> tuple[list[dict], int]:
    """A page of the queue and the queue's length."""
    with engine.connect() as connection:
        started = _started(connection, run_id)
        if started is None:
            return [], 0
        disputed, where = _queued(run_id, started, scope)
        total = connection.execute(sa.select(sa.func.count()).select_from(rows).where(where)
                                   ).scalar()
        found = connection.execute(
            sa.select(rows.c.vss_code, rows.c.province_code, rows.c.status, rows.c.reasons,
                      rows.c.full_name, rows.c.birth_date, rows.c.match_probability,
                      disputed.label("disputed"))
            .where(where)
            .order_by(disputed.desc(), rows.c.match_probability.desc().nulls_last(),
                      rows.c.vss_code)
            .limit(PAGE).offset((page - 1) * PAGE)).mappings().all()
    return [dict(r) for r in found], int(total)


def next_in_queue(engine: sa.Engine, run_id: int, scope: Scope, after: str) -> str | None:
    """The first row of the queue other than ``after`` (just decided, so no longer in it)."""
    page, _ = queue(engine, run_id, scope)
    return next((r["vss_code"] for r in page if r["vss_code"] != after), None)


def standing_decisions(engine: sa.Engine, vss_code: str) -> list[dict]:
    """The row's decisions, newest first, revoked ones included (the row's audit)."""
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(
            sa.select(decisions).where(decisions.c.vss_code == vss_code)
            .order_by(decisions.c.decision_id.desc())).mappings()]


def _decision_scope(scope: Scope):
    """A reviewer's decisions: those on rows of their province (or 34-scheme unit) when
    decided; a national reviewer's, every decision."""
    if scope.code is None:
        return sa.true()
    return (decisions.c.unit_34 if scope.scheme == "34" else decisions.c.province_code) == \
        scope.code


def decision_log(engine: sa.Engine, scope: Scope, *, standing_only: bool = False,
                 page: int = 1) -> tuple[list[dict], int]:
    """A page of the decisions in a reviewer's scope, newest first, and how many there are:
    the reviewers' audit trail, where a mistaken decision is found and revoked."""
    where = sa.and_(_decision_scope(scope),
                    decisions.c.revoked_at.is_(None) if standing_only else sa.true())
    with engine.connect() as connection:
        total = connection.execute(
            sa.select(sa.func.count()).select_from(decisions).where(where)).scalar()
        found = connection.execute(
            sa.select(decisions).where(where).order_by(decisions.c.decision_id.desc())
            .limit(PAGE).offset((page - 1) * PAGE)).mappings().all()
    return [dict(r) for r in found], int(total)


def decision_in_scope(engine: sa.Engine, decision_id: int, scope: Scope) -> dict | None:
    """One decision, if it lies in the reviewer's scope."""
    with engine.connect() as connection:
        found = connection.execute(sa.select(decisions).where(
            decisions.c.decision_id == decision_id, _decision_scope(scope))).mappings().first()
    return dict(found) if found else None


def candidates(row: dict) -> list[dict]:
    """A row in review's candidates, best first (the results' ``candidates``: personal ID,
    name, birth date, gender, probability, weight, explanation); none for rows without."""
    try:
        listed = json.loads(row.get("candidates") or "[]")
    except ValueError:
        return []
    return [c for c in listed if isinstance(c, dict) and c.get("personal_id")]


def waterfall_steps(explanation: str | dict | None,
                    labels: dict[str, str]) -> list[tuple[str, float]]:
    """A candidate's weight as steps: the prior, then each field at its level."""
    if not explanation:
        return []
    parsed = dict(explanation) if isinstance(explanation, dict) else json.loads(explanation)
    steps = [(labels.get("prior", "prior"), float(parsed.pop("prior")))]
    for field, (level, weight) in parsed.items():
        steps.append((f"{labels.get(field, field)}: {level}", float(weight)))
    return steps
