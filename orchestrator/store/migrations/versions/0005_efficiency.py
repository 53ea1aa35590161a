"""the efficiency study's measurements (decode, prefill, length extrapolation per trained model)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "efficiency_measurements",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column(
            "trial_id", sa.String(length=32), sa.ForeignKey("trials.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.UniqueConstraint(
            "trial_id", "measure", "length", "batch", "position", "metric", name="uq_efficiency_measurement"
        ),
    )
    op.create_index("ix_efficiency_measurements_trial_id", "efficiency_measurements", ["trial_id"])


def downgrade() -> None:
    op.drop_index("ix_efficiency_measurements_trial_id", table_name="efficiency_measurements")
    op.drop_table("efficiency_measurements")
