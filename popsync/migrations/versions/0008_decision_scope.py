"""review_decisions.province_code and unit_34: the registering office of the row decided and its
34-scheme unit, so a province's reviewers can list and revoke their province's decisions
(issue 12); null for decisions recorded before (only a national reviewer lists those).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_decisions") as decisions:
        decisions.add_column(sa.Column("province_code", sa.String(2)))
        decisions.add_column(sa.Column("unit_34", sa.String(2)))


def downgrade() -> None:
    with op.batch_alter_table("review_decisions") as decisions:
        decisions.drop_column("unit_34")
        decisions.drop_column("province_code")
