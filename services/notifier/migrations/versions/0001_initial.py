"""The notifier's ledger, retry queue, due reminders, outbox and errors (services/notifier/ledger.py).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sent_ledger",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("position", sa.String(40), nullable=False),
        sa.Column("sent_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_sent_ledger"),
    )
    op.create_table(
        "mail_queue",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("position", sa.String(40), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.String(40), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_mail_queue"),
    )
    op.create_table(
        "due_reminders",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("ine", sa.String(11), nullable=False),
        sa.Column("due_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "ine", name="pk_due_reminders"),
    )
    op.create_index("ix_due_reminders_due_at", "due_reminders", ["due_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("stored_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_table(
        "notifier_errors",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("error", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notifier_errors"),
    )


def downgrade() -> None:
    for name in ("notifier_errors", "outbox", "due_reminders", "mail_queue", "sent_ledger"):
        op.drop_table(name)
