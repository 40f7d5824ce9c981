"""SPEC §8: the académie's sign-ins started per browser address, counted as wrong access codes are
(shared/runtime/tries.py), so that /auth/login locks an address after too many starts without a verified answer.

Revision ID: 0005
Revises: 0004
"""

from shared.runtime.tries import create_sign_in_starts_table, drop_sign_in_starts_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_sign_in_starts_table()


def downgrade() -> None:
    drop_sign_in_starts_table()
