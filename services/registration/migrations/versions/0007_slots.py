"""SPEC §7: the lycées' interview slots and the places their bookings take (the collège books from them; shared/runtime/projection/slots.py).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slots",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("slot_id", sa.String(64), nullable=False),
        sa.Column("lycee_uai", sa.String(8), nullable=False),
        sa.Column("formation_code", sa.String(11), nullable=False),
        sa.Column("starts_at", sa.String(40), nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(12), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("campaign", "slot_id", name="pk_slots"),
    )
    op.create_index("ix_slots_lycee_order", "slots", ["campaign", "lycee_uai", "formation_code", "starts_at", "slot_id"])
    op.create_index("ix_slots_order", "slots", ["campaign", "starts_at", "slot_id"])
    op.create_table(
        "slot_bookings",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("ine", sa.String(11), nullable=False),
        sa.Column("interview_id", sa.String(64), nullable=False),
        sa.Column("slot_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "ine", "interview_id", name="pk_slot_bookings"),
    )
    op.create_index("ix_slot_bookings_slot", "slot_bookings", ["campaign", "slot_id"])


def downgrade() -> None:
    op.drop_table("slot_bookings")
    op.drop_table("slots")
