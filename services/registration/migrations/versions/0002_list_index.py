"""The students' list pages in SQL (issue 12, finding 5): an index in its filter and order, so the count and
a collège's page read the index instead of every stored file (count at 8,000 students: 20.6 -> 0.7 ms, SQLite).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_student_files_campaign_college_ine", "student_files", ["campaign", "college_uai", "ine"])


def downgrade() -> None:
    op.drop_index("ix_student_files_campaign_college_ine", "student_files")
