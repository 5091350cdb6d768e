"""runs.stopped_by: the validation gate that stopped a run (null when none did), so the portal
and the engineers can tell a gate stop from a failure without parsing the message.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("stopped_by", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("stopped_by")
