"""worklist_rows.candidates: a row in review's best candidates (up to 5), each with its
probability, weight and comparison levels, for the review queue (issue 12); null for rows
loaded before and for rows not in review.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worklist_rows") as rows:
        rows.add_column(sa.Column("candidates", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("worklist_rows") as rows:
        rows.drop_column("candidates")
