"""Reviewers' decisions in the publication database: record one (closing those it supersedes),
revoke one, both audited in the table itself; and the standing ones, which the night's matching
reads (matching.link's ``decisions``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from popsync.contracts import CONFIRMED, DECISION_COLUMNS, DECISIONS, NOT_IN_POPULATION
from popsync.errors import PopsyncError
from popsync.reference.identifiers import mask
from popsync.store import review_decisions as table


class DecisionError(PopsyncError, ValueError):
    """A decision that cannot be recorded or revoked as asked."""


def record(engine: sa.Engine, vss_code: str, personal_id: str | None, decision: str,
           decided_by: str, note: str | None = None, at: datetime | None = None, *,
           province_code: str | None = None, unit_34: str | None = None) -> int:
    """Record a reviewer's decision; returns its id. In the same transaction it closes the
    standing decisions it supersedes: on the same pair; and for a confirmation, the row's other
    confirmation and its not-in-population decision (for not-in-population, its confirmation),
    so the standing decisions of a row never contradict each other. ``province_code`` and
    ``unit_34`` (the row's office and 34-scheme unit) scope the decision log to a province."""
    if decision not in DECISIONS:
        raise DecisionError(f"unknown decision {decision!r}: use one of {', '.join(DECISIONS)}")
    if not re.fullmatch(r"\d{10}", str(vss_code)):
        raise DecisionError(f"VSS code {mask(vss_code)} (masked) is not 10 digits")
    if personal_id is not None and not re.fullmatch(r"\d{12}", str(personal_id)):
        raise DecisionError(f"personal ID {mask(personal_id)} (masked) is not 12 digits")
    if personal_id is None and decision != NOT_IN_POPULATION:
        raise DecisionError(f"a {decision} decision names a person: give their personal ID")
    at = at or datetime.now(UTC)
    standing = sa.and_(table.c.vss_code == vss_code, table.c.revoked_at.is_(None))
    same_pair = (table.c.personal_id.is_(None) if personal_id is None
                 else table.c.personal_id == personal_id)
    superseded = same_pair
    if decision == CONFIRMED:
        superseded = sa.or_(same_pair, table.c.decision.in_([CONFIRMED, NOT_IN_POPULATION]))
    elif decision == NOT_IN_POPULATION:
        superseded = sa.or_(same_pair, table.c.decision == CONFIRMED)
    with engine.begin() as connection:
        decision_id = connection.execute(sa.insert(table).values(
            vss_code=vss_code, personal_id=personal_id, decision=decision,
            decided_by=decided_by, decided_at=at, note=note, province_code=province_code,
            unit_34=unit_34)).inserted_primary_key[0]
        connection.execute(
            sa.update(table)
            .where(standing, superseded, table.c.decision_id != decision_id)
            .values(revoked_at=at, revoked_by=decided_by,
                    revoke_note=f"superseded by decision {decision_id}"))
    return int(decision_id)


def revoke(engine: sa.Engine, decision_id: int, revoked_by: str, note: str | None = None,
           at: datetime | None = None) -> None:
    """Revoke a standing decision: the night stops applying it; the row keeps who, when, why."""
    with engine.begin() as connection:
        done = connection.execute(
            sa.update(table)
            .where(table.c.decision_id == decision_id, table.c.revoked_at.is_(None))
            .values(revoked_at=at or datetime.now(UTC), revoked_by=revoked_by,
                    revoke_note=note)).rowcount
    if not done:
        raise DecisionError(f"no standing decision {decision_id}: it does not exist or was "
                            "revoked already")


def standing(engine: sa.Engine) -> pd.DataFrame:
    """The decisions not revoked, as matching reads them (contracts.DECISION_COLUMNS)."""
    query = sa.select(*(table.c[name] for name in DECISION_COLUMNS)).where(
        table.c.revoked_at.is_(None)).order_by(table.c.decision_id)
    with engine.connect() as connection:
        rows = connection.execute(query).fetchall()
    return pd.DataFrame([tuple(row) for row in rows], columns=list(DECISION_COLUMNS))
