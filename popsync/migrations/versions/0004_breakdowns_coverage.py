"""breakdowns and coverage: the night's figures by age band and gender, and the coverage of the
residents of each province by the registrations of each line (issue 13).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATUS_COUNTS = ("participants", "synchronized", "needs_correction", "needs_review", "unmatched")


def upgrade() -> None:
    op.create_table(
        "breakdowns",
        sa.Column("run_date", sa.String(10), primary_key=True),
        sa.Column("scheme", sa.String(2), primary_key=True),
        sa.Column("line", sa.String(16), primary_key=True),
        sa.Column("province_code", sa.String(2), primary_key=True),
        sa.Column("dimension", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(16), primary_key=True),
        *(sa.Column(name, sa.Integer, nullable=False) for name in STATUS_COUNTS),
        sa.Column("sync_rate", sa.Float, nullable=False),
    )
    op.create_table(
        "coverage",
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


def downgrade() -> None:
    op.drop_table("coverage")
    op.drop_table("breakdowns")
