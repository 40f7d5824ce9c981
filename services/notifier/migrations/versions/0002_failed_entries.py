"""The entries the notifier gave up on after MAX_DELIVERIES failures, kept for operators (`passpro notifier
failed`) and retried on request (`passpro notifier retry`).

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
    op.create_table(
        "failed_entries",
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
        sa.Column("failed_at", sa.String(40), nullable=False),
        sa.Column("retry", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("stream", "entry_id", name="pk_failed_entries"),
    )


def downgrade() -> None:
    op.drop_table("failed_entries")
