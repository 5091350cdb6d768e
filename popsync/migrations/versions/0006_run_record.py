"""run_tasks, run_gates: what each task of a run did (when, where, how long, whether it failed)
and each validation gate's outcome with its figures, for the engineers' run page (issue 15).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_tasks",
        sa.Column("task_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_seconds", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text),
    )
    op.create_index("ix_run_tasks_run_id", "run_tasks", ["run_id"])
    op.create_table(
        "run_gates",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("gate", sa.String(32), primary_key=True),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_gates")
    op.drop_index("ix_run_tasks_run_id", "run_tasks")
    op.drop_table("run_tasks")
