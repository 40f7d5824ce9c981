"""Views for the reliability tests: one that counts how often it applied each entry, and one that fails."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, select, update

from shared.contracts.streams import LoggedEvent
from shared.runtime.db import new_metadata
from shared.runtime.views import positions_table


class EntriesApplied:
    """A view that counts how many times it applied each entry, so a lost or doubled one shows."""

    name = "entries-applied"

    def __init__(self) -> None:
        self.metadata = new_metadata()
        self.positions = positions_table(self.metadata)
        self.applied = Table(
            "entries_applied",
            self.metadata,
            Column("stream", String(200), primary_key=True),
            Column("entry_id", String(40), primary_key=True),
            Column("times", Integer, nullable=False),
        )

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        for logged in events:
            key = (self.applied.c.stream == logged.stream) & (self.applied.c.entry_id == logged.entry_id)
            if conn.execute(update(self.applied).where(key).values(times=self.applied.c.times + 1)).rowcount == 0:
                conn.execute(self.applied.insert().values(stream=logged.stream, entry_id=logged.entry_id, times=1))

    def read(self, engine: Engine) -> dict[tuple[str, str], int]:
        with engine.connect() as conn:
            return {(r.stream, r.entry_id): r.times for r in conn.execute(select(self.applied))}


class FailingFor(EntriesApplied):
    """EntriesApplied with a bug: it raises on the events whose id is in `failing`, and counts the tries."""

    name = "failing-for"

    def __init__(self, failing: set[str], error: type[Exception] = RuntimeError) -> None:
        super().__init__()
        self.failing = failing
        self.error = error
        self.tries: dict[str, int] = {}

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        for logged in events:
            event_id = str(logged.event.event_id)
            if event_id in self.failing:
                self.tries[event_id] = self.tries.get(event_id, 0) + 1
                raise self.error(f"the view cannot apply {event_id}")
        super().apply(conn, events)
