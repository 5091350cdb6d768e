"""worklist_rows.explanation: the best candidate's match weight field by field, for the review
queue's waterfall (issue 12); null for rows loaded before.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worklist_rows") as rows:
        rows.add_column(sa.Column("explanation", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("worklist_rows") as rows:
        rows.drop_column("explanation")
