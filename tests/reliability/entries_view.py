"""Views for the reliability tests: one that counts how often it applied each entry, one that fails, and
scoring's projection with the count beside it (its fold is idempotent by design: only a count shows a double)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from services.scoring.views import BonusProjection
from shared.contracts.streams import LoggedEvent
from shared.runtime.db import new_metadata
from shared.runtime.projection.views import positions_table


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
        # One statement per page (the crash test counts tens of thousands of entries); an entry met twice,
        # in one page or in two, adds up either way.
        times = Counter((logged.stream, logged.entry_id) for logged in events)
        if not times:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(self.applied)
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["stream", "entry_id"],
                                       set_={"times": self.applied.c.times + stmt.excluded.times}),
            [{"stream": stream, "entry_id": entry_id, "times": n} for (stream, entry_id), n in times.items()],
        )

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


class CountedBonuses:
    """Scoring's projection, with each entry's count written in the same transaction as its effect."""

    def __init__(self) -> None:
        self.bonuses = BonusProjection()
        self.counts = EntriesApplied()
        self.name = self.bonuses.name
        self.positions = self.bonuses.positions
        self.personal_tables = self.bonuses.personal_tables

    def create_count_table(self, engine: Engine) -> None:
        """The count's table, beside the projection's (made by its migrations)."""
        self.counts.applied.create(engine, checkfirst=True)

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        self.bonuses.apply(conn, events)
        self.counts.apply(conn, events)

    def read(self, engine: Engine) -> dict[tuple[str, str], int]:
        return self.counts.read(engine)
