"""worklist_rows, work_items, work_history: the clerks' work list of a night's rows to fix and
the work status of each row, kept by VSS code with its history (issue 11).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FILTERED = ("status", "si_compulsory", "si_voluntary", "hi", "ui", "ward_code", "employer_code",
            "reasons")
FOLDED = sa.String(160).with_variant(sa.String(160, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "worklist_rows",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("vss_code", sa.String(10), primary_key=True),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("unit_34", sa.String(2), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("full_name", sa.Text),
        sa.Column("folded_name", FOLDED, nullable=False),
        sa.Column("birth_date", sa.String(10)),
        sa.Column("gender", sa.String(1)),
        sa.Column("national_id", sa.String(32)),
        sa.Column("personal_id", sa.String(12)),
        sa.Column("match_probability", sa.Float),
        sa.Column("suggested_full_name", sa.Text),
        sa.Column("suggested_birth_date", sa.String(10)),
        sa.Column("suggested_gender", sa.String(1)),
        sa.Column("suggested_national_id", sa.String(12)),
        sa.Column("si_compulsory", sa.Boolean, nullable=False),
        sa.Column("si_voluntary", sa.Boolean, nullable=False),
        sa.Column("hi", sa.Boolean, nullable=False),
        sa.Column("ui", sa.Boolean, nullable=False),
        sa.Column("ward_code", sa.String(16)),
        sa.Column("employer_code", sa.String(32)),
        sa.Column("employer_name", sa.Text),
        sa.Column("other_vss_codes", sa.Text),
    )
    for name, columns in (
        ("province_vss", ["province_code", "vss_code", *FILTERED]),
        ("province_name", ["province_code", "folded_name", "vss_code"]),
        ("unit_vss", ["unit_34", "vss_code", *FILTERED]),
        ("unit_name", ["unit_34", "folded_name", "vss_code"]),
        ("national_id", ["national_id"]),
        ("personal_id", ["personal_id"]),
    ):
        op.create_index(f"ix_worklist_rows_{name}", "worklist_rows", ["run_id", *columns])
    op.create_table(
        "work_items",
        sa.Column("vss_code", sa.String(10), primary_key=True),
        *_change_columns(),
    )
    op.create_index("ix_work_items_province_code", "work_items", ["province_code"])
    op.create_table(
        "work_history",
        sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("vss_code", sa.String(10), nullable=False),
        *_change_columns(),
    )
    op.create_index("ix_work_history_vss_code", "work_history", ["vss_code"])
    op.create_index("ix_work_history_run_date", "work_history", ["run_date"])


def _change_columns() -> list[sa.Column]:
    """The columns of a work status change, in both tables (as of this revision: a migration
    does not follow later changes of store.py)."""
    return [
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_date", sa.String(10)),
    ]


def downgrade() -> None:
    op.drop_table("work_history")
    op.drop_table("work_items")
    op.drop_table("worklist_rows")
