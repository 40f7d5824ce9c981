"""Registration's first tables: read positions, student files, campaigns.

Revision ID: 0001
Revises:
"""

from shared.runtime.migrations import create_view_tables, drop_view_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_view_tables()


def downgrade() -> None:
    drop_view_tables()
