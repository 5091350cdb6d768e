"""The audit log's writer: list downloads, failed logins and refused (throttled) logins, each
with when, who, what and from which address. Passwords never reach it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from portal.tables import audit_log

# The column's width, and the longest username an account may have: a longer one was never a
# real account, so nothing is lost by cutting it.
USERNAME_LENGTH = 64
CLIENT_LENGTH = 64

LOGIN = "login"
LOGIN_FAILED = "failed"
LOGIN_THROTTLED = "throttled"


def logged_username(username: str) -> str:
    """A username as tried, fit for the log and the throttle's keys: at most 64 characters,
    unprintable characters as '?' (a NUL cannot even be stored in PostgreSQL text)."""
    return "".join(ch if ch.isprintable() else "?" for ch in username[:USERNAME_LENGTH])


def record(
    engine: sa.Engine, action: str, outcome: str, username: str | None, client: str, **what
) -> None:
    """One entry; ``what`` holds the columns naming a download's file (scheme, province...)."""
    with engine.begin() as conn:
        conn.execute(
            audit_log.insert().values(
                at=datetime.now(UTC),
                username=None if username is None else logged_username(username),
                action=action, outcome=outcome, client=client[:CLIENT_LENGTH], **what,
            )
        )


def login_refused_since(engine: sa.Engine, since: datetime, client: str) -> bool:
    """Whether a refused login from ``client`` has been written since ``since``."""
    query = sa.select(audit_log.c.id).where(
        audit_log.c.at >= since,
        audit_log.c.action == LOGIN,
        audit_log.c.outcome == LOGIN_THROTTLED,
        audit_log.c.client == client[:CLIENT_LENGTH],
    )
    with engine.connect() as conn:
        return conn.execute(query.limit(1)).first() is not None
