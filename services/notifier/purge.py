"""What purging a campaign deletes from the notifier's tables (records' retention calls it, like the services'
own `purge_campaign`). The notifier's keys all name their campaign (`<kind>:<campaign>:<INE>[:…]`), its
ledger and retry queue hold the stream each e-mail came from, and its errors name a stream or a key."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from services.notifier.ledger import (due_reminders, entry_failures, failed_entries, mail_queue, metadata,
                                     notifier_errors, outbox, sent_ledger)


def _of_campaign(column: sa.Column, campaign: str) -> sa.ColumnElement[bool]:
    return column.contains(f":{campaign}:", autoescape=True)


def purge_campaign(conn: Connection, campaign: str, streams_prefix: str) -> dict[str, int]:
    """The campaign's rows in every table of the notifier; rows deleted per table (those with none left out)."""
    wheres = {
        sent_ledger: sa.or_(_of_campaign(sent_ledger.c.key, campaign),
                            sent_ledger.c.stream.startswith(streams_prefix, autoescape=True)),
        mail_queue: sa.or_(_of_campaign(mail_queue.c.key, campaign),
                           mail_queue.c.stream.startswith(streams_prefix, autoescape=True)),
        outbox: _of_campaign(outbox.c.key, campaign),
        due_reminders: due_reminders.c.campaign == campaign,
        failed_entries: failed_entries.c.stream.startswith(streams_prefix, autoescape=True),
        entry_failures: entry_failures.c.stream.startswith(streams_prefix, autoescape=True),
        # An entry's failure names its stream; an e-mail's names its key.
        notifier_errors: sa.or_(_of_campaign(notifier_errors.c.key, campaign),
                                notifier_errors.c.error.contains(streams_prefix, autoescape=True)),
    }
    assert set(wheres) == set(metadata.sorted_tables), "every table of the notifier is purged"
    deleted = {table.name: conn.execute(sa.delete(table).where(where)).rowcount for table, where in wheres.items()}
    return {name: n for name, n in deleted.items() if n}
