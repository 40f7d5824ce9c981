"""Signed checkpoints of the log's heads, kept outside Redis for the audit.

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
        "checkpoints",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("hash", sa.String(40), nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("hmac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
    )
    op.create_index("ix_checkpoints_stream", "checkpoints", ["stream"])


def downgrade() -> None:
    op.drop_index("ix_checkpoints_stream", "checkpoints")
    op.drop_table("checkpoints")
