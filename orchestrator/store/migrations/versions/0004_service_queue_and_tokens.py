"""the service's sweep queue and API tokens (ceiling serve)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweep_queue",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_sweep_queue_spec_hash", "sweep_queue", ["spec_hash"])
    op.create_index("ix_sweep_queue_owner", "sweep_queue", ["owner"])
    op.create_index("ix_sweep_queue_status_submitted", "sweep_queue", ["status", "submitted_at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=16), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_user", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_sweep_queue_status_submitted", table_name="sweep_queue")
    op.drop_index("ix_sweep_queue_owner", table_name="sweep_queue")
    op.drop_index("ix_sweep_queue_spec_hash", table_name="sweep_queue")
    op.drop_table("sweep_queue")
