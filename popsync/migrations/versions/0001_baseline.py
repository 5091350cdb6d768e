"""Baseline: the publication schema before versioning (runs, run_locks, publications, metrics,
reason_counts). A database made by an earlier release has these tables and no version:
``popsync db upgrade`` marks it at this revision, then applies the later ones.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_date", sa.String(10), nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("participants", sa.Integer),
        sa.Column("quarantined", sa.Integer),
        sa.Column("sync_rate", sa.Float),
    )
    op.create_table(
        "run_locks",
        sa.Column("run_date", sa.String(10), primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "publications",
        sa.Column("run_date", sa.String(10), primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
    )
    op.create_table(
        "metrics",
        sa.Column("run_date", sa.String(10), primary_key=True),
        sa.Column("scheme", sa.String(2), primary_key=True),
        sa.Column("line", sa.String(16), primary_key=True),
        sa.Column("province_code", sa.String(2), primary_key=True),
        sa.Column("participants", sa.Integer, nullable=False),
        sa.Column("synchronized", sa.Integer, nullable=False),
        sa.Column("needs_correction", sa.Integer, nullable=False),
        sa.Column("needs_review", sa.Integer, nullable=False),
        sa.Column("unmatched", sa.Integer, nullable=False),
        sa.Column("sync_rate", sa.Float, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("change", sa.Float),
    )
    op.create_table(
        "reason_counts",
        sa.Column("run_date", sa.String(10), primary_key=True),
        sa.Column("scheme", sa.String(2), primary_key=True),
        sa.Column("province_code", sa.String(2), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("reason", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("reason_counts", "metrics", "publications", "run_locks", "runs"):
        op.drop_table(table)
