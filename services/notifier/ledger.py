"""The notifier's own tables and their reads and writes (SQLite by default, PostgreSQL in production).

- `sent_ledger`: every notification sent (or kept in the outbox), keyed by its notification key, with the
  stream position that caused it: the guard against a redelivered entry. Written in the transaction that
  records the send, so a crash between the SMTP answer and the commit sends it once more at worst.
- `mail_queue`: notifications whose send failed, with their next attempt (SMTP retried with backoff while
  the log goes on being read).
- `due_reminders`: the time-based reminders a student's history will need (a date, checked again at that date).
- `outbox`: with no SMTP configured, the e-mails kept for the local outbox page.
- `notifier_errors`: the latest failures, for `passpro status`.
- `failed_entries`: the log entries given up on after MAX_DELIVERIES failures (acknowledged, so the group goes
  on), with their last error: listed by `passpro notifier failed`, handled again on `passpro notifier retry`.
- `entry_failures`: how many times each entry pending has failed so far, in the database so that the count
  holds across a restart and between notifier processes (any of them may claim the entry next).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from shared.runtime.db import new_metadata

metadata = new_metadata()

sent_ledger = sa.Table(
    "sent_ledger", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("stream", sa.String(200), nullable=False),
    sa.Column("position", sa.String(40), nullable=False),
    sa.Column("sent_at", sa.String(40), nullable=False),
)

mail_queue = sa.Table(
    "mail_queue", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("stream", sa.String(200), nullable=False),
    sa.Column("position", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False),  # the whole RFC 5322 message, as it will be sent
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.String(40), nullable=False),
    sa.Column("last_error", sa.String(500), nullable=True),
)

due_reminders = sa.Table(
    "due_reminders", metadata,
    sa.Column("campaign", sa.String(4), nullable=False),
    sa.Column("ine", sa.String(11), nullable=False),
    sa.Column("due_at", sa.String(40), nullable=False),
    sa.PrimaryKeyConstraint("campaign", "ine", name="pk_due_reminders"),
    sa.Index("ix_due_reminders_due_at", "due_at"),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("stored_at", sa.String(40), nullable=False),
)

notifier_errors = sa.Table(
    "notifier_errors", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("error", sa.String(500), nullable=False),
)

failed_entries = sa.Table(
    "failed_entries", metadata,
    sa.Column("stream", sa.String(200), nullable=False),
    sa.Column("entry_id", sa.String(40), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.String(500), nullable=False),
    sa.Column("failed_at", sa.String(40), nullable=False),
    sa.Column("retry", sa.Boolean, nullable=False, server_default=sa.false()),  # an operator asked for it
    sa.PrimaryKeyConstraint("stream", "entry_id", name="pk_failed_entries"),
)

entry_failures = sa.Table(
    "entry_failures", metadata,
    sa.Column("stream", sa.String(200), nullable=False),
    sa.Column("entry_id", sa.String(40), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("stream", "entry_id", name="pk_entry_failures"),
)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def was_sent(conn: Connection, key: str) -> bool:
    return conn.execute(sa.select(sent_ledger.c.key).where(sent_ledger.c.key == key)).first() is not None


def record_sent(conn: Connection, *, key: str, kind: str, recipient: str, stream: str, position: str,
                sent_at: datetime) -> None:
    """The send recorded with the position that caused it; the queued retry, if any, done with."""
    conn.execute(sa.delete(mail_queue).where(mail_queue.c.key == key))
    if not was_sent(conn, key):
        conn.execute(sa.insert(sent_ledger).values(
            key=key, kind=kind, recipient=recipient, stream=stream, position=position, sent_at=iso(sent_at)))


def queue_retry(conn: Connection, *, key: str, kind: str, recipient: str, stream: str, position: str,
                message: str, attempts: int, next_attempt_at: datetime, error: str) -> None:
    conn.execute(sa.delete(mail_queue).where(mail_queue.c.key == key))
    conn.execute(sa.insert(mail_queue).values(
        key=key, kind=kind, recipient=recipient, stream=stream, position=position, message=message,
        attempts=attempts, next_attempt_at=iso(next_attempt_at), last_error=error[:500]))


def record_error(conn: Connection, at: datetime, key: str | None, error: str, keep: int = 50) -> None:
    conn.execute(sa.insert(notifier_errors).values(at=iso(at), key=key, error=error[:500]))
    last = conn.execute(sa.select(sa.func.max(notifier_errors.c.id))).scalar_one()
    conn.execute(sa.delete(notifier_errors).where(notifier_errors.c.id <= last - keep))


def set_due(conn: Connection, campaign: str, ine: str, due_at: datetime | None) -> None:
    conn.execute(sa.delete(due_reminders).where(
        due_reminders.c.campaign == campaign, due_reminders.c.ine == ine))
    if due_at is not None:
        conn.execute(sa.insert(due_reminders).values(campaign=campaign, ine=ine, due_at=iso(due_at)))


def due_students(conn: Connection, now: datetime, limit: int = 500) -> list[tuple[str, str]]:
    rows = conn.execute(sa.select(due_reminders.c.campaign, due_reminders.c.ine)
                        .where(due_reminders.c.due_at <= iso(now)).order_by(due_reminders.c.due_at).limit(limit))
    return [(r.campaign, r.ine) for r in rows]


def retries_due(conn: Connection, now: datetime, limit: int = 100) -> list[sa.Row]:
    return list(conn.execute(sa.select(mail_queue).where(mail_queue.c.next_attempt_at <= iso(now))
                             .order_by(mail_queue.c.next_attempt_at).limit(limit)))


def keep_in_outbox(conn: Connection, *, key: str, recipient: str, subject: str, text: str, html: str,
                   at: datetime) -> None:
    conn.execute(sa.insert(outbox).values(key=key, recipient=recipient, subject=subject, text=text, html=html,
                                          stored_at=iso(at)))


def outbox_page(conn: Connection, limit: int = 100) -> list[sa.Row]:
    return list(conn.execute(sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)))


def last_errors(conn: Connection, limit: int = 5) -> list[sa.Row]:
    return list(conn.execute(sa.select(notifier_errors).order_by(notifier_errors.c.id.desc()).limit(limit)))


def counts(conn: Connection) -> dict[str, int]:
    def count(table: sa.Table) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    return {"sent": count(sent_ledger), "retrying": count(mail_queue), "reminders": count(due_reminders),
            "failed_entries": count(failed_entries)}


def count_entry_failure(conn: Connection, stream: str, entry_id: str) -> int:
    """One more failure of the entry, in one statement (two notifiers counting at once both count); the count."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(entry_failures).values(stream=stream, entry_id=entry_id, failures=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["stream", "entry_id"], set_={"failures": entry_failures.c.failures + 1},
    ).returning(entry_failures.c.failures)
    return conn.execute(stmt).scalar_one()


def forget_entry_failures(conn: Connection, stream: str, entry_id: str) -> None:
    conn.execute(sa.delete(entry_failures).where(entry_failures.c.stream == stream,
                                                 entry_failures.c.entry_id == entry_id))


def record_failed(conn: Connection, stream: str, entry_id: str, attempts: int, error: str, at: datetime) -> None:
    forget_entry_failures(conn, stream, entry_id)  # given up: its count is done with
    conn.execute(sa.delete(failed_entries).where(failed_entries.c.stream == stream,
                                                 failed_entries.c.entry_id == entry_id))
    conn.execute(sa.insert(failed_entries).values(stream=stream, entry_id=entry_id, attempts=attempts,
                                                  error=error[:500], failed_at=iso(at), retry=False))


def failed(conn: Connection, limit: int = 100) -> list[sa.Row]:
    return list(conn.execute(sa.select(failed_entries).order_by(failed_entries.c.failed_at).limit(limit)))


def request_retry(conn: Connection, stream: str | None = None, entry_id: str | None = None) -> int:
    """Marks failed entries to be handled again by the notifier (all of them, or one); how many."""
    query = sa.update(failed_entries).values(retry=True)
    if stream is not None:
        query = query.where(failed_entries.c.stream == stream, failed_entries.c.entry_id == entry_id)
    return conn.execute(query).rowcount


def retries_requested(conn: Connection, limit: int = 100) -> list[tuple[str, str]]:
    rows = conn.execute(sa.select(failed_entries.c.stream, failed_entries.c.entry_id)
                        .where(failed_entries.c.retry.is_(True)).limit(limit))
    return [(r.stream, r.entry_id) for r in rows]


def forget_failed(conn: Connection, stream: str, entry_id: str) -> None:
    conn.execute(sa.delete(failed_entries).where(failed_entries.c.stream == stream,
                                                 failed_entries.c.entry_id == entry_id))


def forget_student(conn: Connection, campaign: str, ine: str) -> None:
    """StudentForgotten: the e-mails kept or waiting that name the student go (their text holds the name); the
    ledger keeps only keys, kinds, recipients and positions, so a redelivery still sends nothing."""
    pattern = f"%:{campaign}:{ine}:%"
    exact = f"%:{campaign}:{ine}"
    for table in (outbox, mail_queue):
        conn.execute(sa.delete(table).where(sa.or_(table.c.key.like(pattern), table.c.key.like(exact))))
    conn.execute(sa.delete(due_reminders).where(due_reminders.c.campaign == campaign, due_reminders.c.ine == ine))
