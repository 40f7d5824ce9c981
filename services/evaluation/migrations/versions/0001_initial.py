"""Evaluation's first tables: read positions, student files, campaigns, interviews by lycée.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.runtime.migrations import create_view_tables, drop_view_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_view_tables()
    op.create_table(
        "interviews",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("ine", sa.String(11), nullable=False),
        sa.Column("interview_id", sa.String(64), nullable=False),
        sa.Column("lycee_uai", sa.String(8), nullable=False),
        sa.Column("formation_code", sa.String(11), nullable=False),
        sa.Column("scheduled_at", sa.String(40)),
        sa.Column("status", sa.String(12), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "ine", "interview_id", name="pk_interviews"),
    )
    op.create_index("ix_interviews_lycee_uai", "interviews", ["lycee_uai"])


def downgrade() -> None:
    op.drop_index("ix_interviews_lycee_uai", "interviews")
    op.drop_table("interviews")
    drop_view_tables()
