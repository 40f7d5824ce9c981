"""The students' access codes (SPEC §6, issue 13): a salted hash per student and campaign, outside the log, and
the wrong tries per INE that the sign-in's limit counts (in the database, so it holds across processes).

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
        "student_access_codes",
        sa.Column("campaign", sa.String(4), primary_key=True),
        sa.Column("ine", sa.String(11), primary_key=True),
        sa.Column("college_uai", sa.String(8), nullable=False),
        sa.Column("code_hash", sa.String(200), nullable=False),
        sa.Column("issued_by", sa.String(128), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_student_access_codes_ine", "student_access_codes", ["ine"])
    op.create_table(
        "student_sign_in_failures",
        sa.Column("ine", sa.String(11), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_student_sign_in_failures_last_failure_at", "student_sign_in_failures", ["last_failure_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_student_sign_in_failures_last_failure_at", "student_sign_in_failures")
    op.drop_table("student_sign_in_failures")
    op.drop_index("ix_student_access_codes_ine", "student_access_codes")
    op.drop_table("student_access_codes")
