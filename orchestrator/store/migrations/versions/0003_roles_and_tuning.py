"""trial roles (main | trunk | branch | tuning), a branch's parent, and tuning choices

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
    with op.batch_alter_table("trials") as batch_op:
        # server_default: rows stored before this revision are ordinary trials (law points).
        batch_op.add_column(sa.Column("role", sa.String(length=16), nullable=False, server_default="main"))
        batch_op.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
    op.create_table(
        "tuning_choices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sweep_name", sa.String(length=64), nullable=False),
        sa.Column("arch", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("lr", sa.Float(), nullable=False),
        sa.Column("beta2", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sweep_name", "arch", "label", name="uq_tuning_sweep_arch_label"),
    )
    op.create_index("ix_tuning_choices_sweep_name", "tuning_choices", ["sweep_name"])


def downgrade() -> None:
    op.drop_index("ix_tuning_choices_sweep_name", table_name="tuning_choices")
    op.drop_table("tuning_choices")
    with op.batch_alter_table("trials") as batch_op:
        batch_op.drop_column("parent_id")
        batch_op.drop_column("role")
