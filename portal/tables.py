"""The portal's own tables (accounts, sessions, login failures, audit log), kept in their own
MetaData beside the publication tables of ``popsync.store`` in the same database."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

LEADERSHIP = "leadership"
OFFICE = "office"
ENGINEER = "engineer"  # the data engineers: the runs' pages, no province's lists
REVIEWER = "reviewer"  # decides uncertain links: of one province, or of the nation (no province)
ROLES = (LEADERSHIP, OFFICE, ENGINEER, REVIEWER)

users = sa.Table(
    "portal_users",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # leadership | office | engineer | reviewer
    # An office's province only means something with its scheme (52 is Bình Định in 63, Gia Lai
    # in 34); both are null for leadership.
    sa.Column("province_code", sa.String(2)),
    sa.Column("scheme", sa.String(2)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Browser sessions: the cookie carries a random token, the table only its SHA-256, so a copy of
# the database does not let anyone log in.
sessions = sa.Table(
    "portal_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "username",
        sa.String(64),
        sa.ForeignKey("portal_users.username", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# Consecutive failed logins per throttle key ("user:<name>|ip:<address>" or "ip:<address>", an
# IPv6 address's /64), to slow guessing down; see security.Throttle.
login_failures = sa.Table(
    "portal_login_failures",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
)

# Every list download, granted or refused; every failed login, and refused (throttled) logins
# once per held address and failure: who, what, when, from where (written by portal/audit.py).
audit_log = sa.Table(
    "portal_audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("username", sa.String(64)),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("scheme", sa.String(2)),
    sa.Column("province_code", sa.String(2)),
    sa.Column("file_format", sa.String(8)),
    sa.Column("run_date", sa.String(10)),
    # download_list: granted | refused; login: failed | throttled
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("client", sa.String(64)),
)


def ensure_tables(engine: sa.Engine) -> None:
    """Create the portal's tables on first use (idempotent)."""
    metadata.create_all(engine)
