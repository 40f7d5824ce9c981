"""Scoring's first tables: read positions, student files, campaigns, vœux, totals, exports.

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
        "voeux",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("ine", sa.String(11), nullable=False),
        sa.Column("lycee_uai", sa.String(8), nullable=False),
        sa.Column("formation_code", sa.String(11), nullable=False),
        sa.Column("college_uai", sa.String(8)),
        sa.Column("lycee_avis", sa.String(12)),
        sa.Column("bonus_points", sa.Integer, nullable=False),
        sa.Column("interview_held", sa.Boolean, nullable=False),
        sa.Column("college_avis_present", sa.Boolean),
        sa.PrimaryKeyConstraint("campaign", "ine", "lycee_uai", "formation_code", name="pk_voeux"),
    )
    op.create_index("ix_voeux_college_uai", "voeux", ["college_uai"])
    op.create_table(
        "student_totals",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("ine", sa.String(11), nullable=False),
        sa.Column("college_uai", sa.String(8)),
        sa.Column("college_avis", sa.String(16)),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("total_bonus_points", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("campaign", "ine", name="pk_student_totals"),
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("exported_at", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("positions", sa.Text, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exports"),
    )


def downgrade() -> None:
    op.drop_table("exports")
    op.drop_table("student_totals")
    op.drop_index("ix_voeux_college_uai", "voeux")
    op.drop_table("voeux")
    drop_view_tables()
