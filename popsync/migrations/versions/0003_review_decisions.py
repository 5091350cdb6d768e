"""review_decisions: reviewers' decisions on links (confirmed, rejected, not in the population),
kept with who, when and why, and closed by revocation rather than deleted (issue 12).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("vss_code", sa.String(10), nullable=False),
        sa.Column("personal_id", sa.String(12)),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.String(64)),
        sa.Column("revoke_note", sa.Text),
    )
    op.create_index("ix_review_decisions_vss_code", "review_decisions", ["vss_code"])
    op.create_index("ix_review_decisions_revoked_at", "review_decisions", ["revoked_at"])


def downgrade() -> None:
    op.drop_table("review_decisions")
