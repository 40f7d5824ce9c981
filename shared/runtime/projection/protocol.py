"""What the consumer loop and a dead-letter retry ask of a view, and the one transaction both apply events in.

A view is anything with a name, its positions table, the tables holding personal
fields and an `apply` that changes its rows inside the caller's transaction.
`ViewTransaction` is that transaction: the consumer applies its pages in it
(`shared/runtime/projection/consumer.py`), `passpro dlq retry` the letters it replays
(`shared/runtime/projection/dead_letters.py`), so both scrub the database's files after
an erasure in the same way.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import InterfaceError, OperationalError

from shared.contracts.events import StudentForgotten
from shared.contracts.streams import LoggedEvent
from shared.runtime.projection.views import FILES, FileCache, save_positions, scrub_erased

log = logging.getLogger(__name__)

# Errors that say the view's database cannot be reached: never an entry's fault, never a dead letter.
DATABASE_UNREACHABLE = (OperationalError, InterfaceError)


class View(Protocol):
    name: str
    positions: Table
    personal_tables: tuple[Table, ...]  # rows holding personal fields: scrubbed on disk after an erasure

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        """Apply a page of events inside the caller's transaction."""


class ViewTransaction:
    """One transaction on a view's database: events applied through the view, the positions they move
    to, then the commit, and after it, if an erasure was applied, the scrub of the database's files.
    Blocking: call it from a thread. `close` rolls back whatever was not committed."""

    def __init__(self, engine: Engine, view: View, files: FileCache | None = None) -> None:
        self.engine = engine
        self.view = view
        self.files = files  # the consumer's student files kept across pages (views.FileCache), if any
        self.conn = engine.connect()
        self._erasure = False

    def _apply(self, events: list[LoggedEvent]) -> None:
        token = FILES.set(self.files)
        try:
            self.view.apply(self.conn, events)
        finally:
            FILES.reset(token)

    def apply(self, events: list[LoggedEvent]) -> None:
        self._apply(events)
        self._erasure = self._erasure or any(isinstance(e.event.payload, StudentForgotten) for e in events)

    def apply_alone(self, event: LoggedEvent) -> None:
        """Apply one event in a savepoint of its own: if the view fails on it, only it is undone.
        (SQLite's savepoints nest only in a transaction a write has begun: save the positions first.)"""
        saved = self.files.savepoint() if self.files is not None else None
        try:
            with self.conn.begin_nested():
                self._apply([event])
        except BaseException:
            if self.files is not None:
                self.files.undo_to(saved)
            raise
        self._erasure = self._erasure or isinstance(event.event.payload, StudentForgotten)

    def save_positions(self, positions: dict[str, str]) -> None:
        save_positions(self.conn, self.view.positions, positions)

    def commit(self) -> None:
        self.conn.commit()
        if self.files is not None:
            self.files.committed()
        if self._erasure:
            self._erasure = False
            try:  # after the commit, and best effort: the events are applied whatever happens here
                scrub_erased(self.engine, self.view.personal_tables)
            except Exception:  # noqa: BLE001 - the next erasure scrubs again
                log.exception("view %s: could not scrub the database's files after an erasure", self.view.name)

    def close(self) -> None:
        if self.files is not None:
            self.files.rolled_back()  # nothing if it committed
        self.conn.close()

    def __enter__(self) -> ViewTransaction:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

