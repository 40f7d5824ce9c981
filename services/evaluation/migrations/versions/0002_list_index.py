"""The interviews' list pages in SQL (issue 12, finding 5): an index in a lycée's filter and order, so its
page is read in order instead of sorted (a page of 100 among 12,000 interviews: 14.4 -> 0.4 ms, SQLite).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ["campaign", "lycee_uai", "scheduled_at", "formation_code", "ine", "interview_id"]


def upgrade() -> None:
    op.create_index("ix_interviews_lycee_order", "interviews", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_interviews_lycee_order", "interviews")
