"""EduConnect identities linked to students' INEs (SPEC §8, services/registration/educonnect.py): outside the
log, `subject` an HMAC of the identity provider and its identifier; purged with the campaign, a student's rows
deleted with their erasure.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "educonnect_links",
        sa.Column("campaign", sa.String(4), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("ine", sa.String(11), nullable=False),
        sa.Column("linked_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_educonnect_links_campaign_ine", "educonnect_links", ["campaign", "ine"])


def downgrade() -> None:
    op.drop_index("ix_educonnect_links_campaign_ine", "educonnect_links")
    op.drop_table("educonnect_links")
