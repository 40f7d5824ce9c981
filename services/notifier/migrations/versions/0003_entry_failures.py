"""How many times each pending entry has failed, kept in the database (before: in the process's memory, so a
restart or a second notifier started the count again and an entry was never given up).

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
    op.create_table(
        "entry_failures",
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("stream", "entry_id", name="pk_entry_failures"),
    )


def downgrade() -> None:
    op.drop_table("entry_failures")
