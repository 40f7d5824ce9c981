"""The archives made of each campaign and the purges done (issue 5, retention).

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
        "campaign_archives",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_archives"),
    )
    op.create_index("ix_campaign_archives_campaign", "campaign_archives", ["campaign"])
    op.create_table(
        "campaign_purges",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("purged_at", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_purges"),
    )
    op.create_index("ix_campaign_purges_campaign", "campaign_purges", ["campaign"])


def downgrade() -> None:
    op.drop_index("ix_campaign_purges_campaign", "campaign_purges")
    op.drop_table("campaign_purges")
    op.drop_index("ix_campaign_archives_campaign", "campaign_archives")
    op.drop_table("campaign_archives")
