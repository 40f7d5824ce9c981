"""The student files a consumer keeps in memory across pages (views.FileCache): the views' rows are the same
as when every file is read back from the database; a file changed by someone else (even at the same version)
is read again; nothing of a transaction rolled back or a savepoint undone is kept. With each file, the rows
written for it: a kept student's unchanged rows are not written again, and they are trusted only with the
file's text (views.write_student_rows)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, event, select, update

from bench.workload import Places, entry_fields, student_history
from services.evaluation.app import MIGRATIONS as EVALUATION_MIGRATIONS
from services.evaluation.views import InterviewsView
from services.evaluation.views import metadata as evaluation_metadata
from services.registration.app import MIGRATIONS as REGISTRATION_MIGRATIONS
from services.registration.views import StudentsView
from services.registration.views import metadata as registration_metadata
from services.scoring.app import MIGRATIONS as SCORING_MIGRATIONS
from services.scoring.views import BonusProjection
from services.scoring.views import metadata as scoring_metadata
from shared.contracts.events import event_from_fields
from shared.contracts.streams import LoggedEvent
from shared.runtime.db import make_engine
from shared.runtime.migrations import upgrade
from shared.runtime.projection.protocol import ViewTransaction
from shared.runtime.projection.views import FileCache

from event_factories import CAMPAIGN

VIEWS = {
    "scoring": (BonusProjection, SCORING_MIGRATIONS, scoring_metadata),
    "registration": (StudentsView, REGISTRATION_MIGRATIONS, registration_metadata),
    "evaluation": (InterviewsView, EVALUATION_MIGRATIONS, evaluation_metadata),
}


def histories(students: int, seed: int) -> list[LoggedEvent]:
    """Whole bench histories, interleaved step by step as the services' writes interleave them."""
    places, rng = Places.from_reference(), random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    steps = [student_history(n, places, rng, now) for n in range(students)]
    events = []
    for version in range(max(len(s) for _, s in steps)):
        for n, (ine, history) in enumerate(steps):
            if version < len(history):
                fields = entry_fields(history[version], ine, CAMPAIGN, now.isoformat(), f"00000000-0000-4000-8000-{n:06d}{version:06d}")
                events.append(LoggedEvent(event_from_fields(fields), "stream", f"{len(events) + 1}-0", version + 1))
    return events


def pages(events: list[LoggedEvent], rng: random.Random) -> list[list[LoggedEvent]]:
    """Pages of random sizes, each in a shuffled order (two streams deliver a student's events in any order)."""
    out, at = [], 0
    while at < len(events):
        size = rng.randint(1, 40)
        page = events[at : at + size]
        rng.shuffle(page)
        out.append(page)
        at += size
    return out


def database(tmp_path: Path, name: str, view: str) -> Engine:
    url = f"sqlite:///{tmp_path / name}.sqlite3"
    upgrade(VIEWS[view][1], url, None)
    return make_engine(url)


def apply(engine: Engine, view, page: list[LoggedEvent], files: FileCache | None) -> None:
    with ViewTransaction(engine, view, files) as tx:
        tx.apply(page)
        tx.commit()


def rows(engine: Engine, view: str) -> dict[str, set[tuple]]:
    with engine.connect() as conn:
        return {t.name: set(conn.execute(select(t)).all()) for t in VIEWS[view][2].sorted_tables}


@pytest.mark.parametrize("view_name", sorted(VIEWS))
def test_a_view_folded_with_the_files_kept_in_memory_stores_the_same_rows_as_read_back_each_time(tmp_path, view_name):
    rng = random.Random(5)
    events = histories(40, seed=11)
    kept, read_back = database(tmp_path, "kept", view_name), database(tmp_path, "read", view_name)
    view, files = VIEWS[view_name][0](), FileCache()
    for page in pages(events, rng):
        apply(kept, view, page, files)
        apply(read_back, view, page, None)
    assert files.hits > 0
    assert rows(kept, view_name) == rows(read_back, view_name)


def test_a_file_changed_elsewhere_at_the_same_version_is_read_again(tmp_path):
    engine = database(tmp_path, "kept", "scoring")
    view, files = BonusProjection(), FileCache()
    events = histories(1, seed=3)
    apply(engine, view, events[:-1], files)
    table = view.positions.metadata.tables["student_files"]
    with engine.begin() as conn:  # another process (a retry) rewrites the file, its version unchanged
        (text,) = conn.execute(select(table.c.file)).one()
        changed = text.replace('"withdrawn":false', '"withdrawn":true')
        assert changed != text
        conn.execute(update(table).values(file=changed))
    apply(engine, view, events[-1:], files)
    with engine.connect() as conn:
        (after,) = conn.execute(select(table.c.file)).one()
    assert '"withdrawn":true' in after  # folded from the row as it was rewritten, not from the file kept
    assert files.misses >= 1


def test_nothing_of_a_transaction_rolled_back_or_a_savepoint_undone_is_kept(tmp_path):
    engine = database(tmp_path, "kept", "scoring")
    view, files = BonusProjection(), FileCache()
    first, second = histories(2, seed=4)[:2], histories(2, seed=4)[2:4]
    with ViewTransaction(engine, view, files) as tx:
        tx.apply(first)  # closed without a commit: rolled back
    assert files._files == {} and files._pending == {}

    class Failing(BonusProjection):
        def apply(self, conn, events):
            super().apply(conn, events)
            raise RuntimeError("the view fails after folding")

    with ViewTransaction(engine, Failing(), files) as tx:
        tx.save_positions({"s": "1-0"})
        with pytest.raises(RuntimeError):
            tx.apply_alone(second[0])
        tx.commit()
    assert files._files == {}  # the savepoint's files were undone before the commit


def inserted(engine: Engine, tables: set[str]) -> list[tuple[str, dict]]:
    """The rows the engine's INSERTs into these tables will carry, as (table, parameters)."""
    seen: list[tuple[str, dict]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO"):
            table = statement.split()[2].strip('"')
            if table in tables:
                seen.extend((table, p) for p in (parameters if executemany else [parameters]))

    return seen


def test_a_kept_student_s_rows_that_did_not_change_are_not_written_again(tmp_path):
    engine = database(tmp_path, "kept", "scoring")
    view, files = BonusProjection(), FileCache()
    events = histories(1, seed=5)  # three vœux; the last event, a lycée avis, changes one of them
    apply(engine, view, events[:-1], files)
    before = rows(engine, "scoring")
    written = inserted(engine, {"voeux", "student_totals"})
    apply(engine, view, events[-1:], files)
    after = rows(engine, "scoring")
    changed = {name: after[name] - before[name] for name in ("voeux", "student_totals")}
    assert len(after["voeux"]) == 3 and len(changed["voeux"]) == 1
    assert sorted(name for name, _ in written) == sorted(name for name, new in changed.items() for _ in new)
    read_back = database(tmp_path, "read", "scoring")
    apply(read_back, view, events[:-1], None)
    apply(read_back, view, events[-1:], None)
    assert rows(read_back, "scoring") == after


def test_the_rows_kept_with_a_file_changed_elsewhere_are_not_trusted(tmp_path):
    engine = database(tmp_path, "kept", "scoring")
    view, files = BonusProjection(), FileCache()
    events = histories(1, seed=5)
    apply(engine, view, events[:-1], files)
    tables = view.positions.metadata.tables
    with engine.begin() as conn:  # another process rewrites the student: the file (same version) and the rows
        conn.execute(update(tables["student_files"]).values(file=select(tables["student_files"].c.file).scalar_subquery() + " "))
        conn.execute(delete(tables["voeux"]))
    apply(engine, view, events[-1:], files)
    read_back = database(tmp_path, "read", "scoring")
    apply(read_back, view, events, None)
    assert len(rows(engine, "scoring")["voeux"]) == 3  # written whole, not only the vœu the event changed
    assert rows(engine, "scoring")["voeux"] == rows(read_back, "scoring")["voeux"]


def test_the_rows_of_a_savepoint_undone_are_not_kept(tmp_path):
    engine = database(tmp_path, "kept", "scoring")
    view, files = BonusProjection(), FileCache()
    events = histories(1, seed=5)
    apply(engine, view, events[:-2], files)

    class Failing(BonusProjection):
        def apply(self, conn, page):
            super().apply(conn, page)
            if page[-1] is events[-1]:
                raise RuntimeError("the view fails after writing")

    with ViewTransaction(engine, Failing(), files) as tx:
        tx.save_positions({"s": "1-0"})
        tx.apply_alone(events[-2])  # kept as written in this savepoint
        with pytest.raises(RuntimeError):
            tx.apply_alone(events[-1])  # its rows undone with the savepoint
        tx.commit()
    apply(engine, view, events[-1:], files)
    read_back = database(tmp_path, "read", "scoring")
    apply(read_back, view, events, None)
    assert rows(engine, "scoring")["voeux"] == rows(read_back, "scoring")["voeux"]
    assert rows(engine, "scoring")["student_totals"] == rows(read_back, "scoring")["student_totals"]
