"""Poison entries: an unreadable one dead-lettered at once, one the view keeps failing on tried a bounded number
of times (pausing outside any transaction), then dead-lettered with their reason while the view goes on; the
student's later entries wait behind the dead letter (parked), across restarts, until a retry replays them in
order once the cause is fixed; `passpro dlq list` and `passpro dlq retry` end to end.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import OperationalError

from entries_view import EntriesApplied, FailingFor
from log_writer import CAMPAIGN, VOEUX, LogWriter, ine_of, proviseur
from services.cli import main as passpro
from services.registration.app import MIGRATIONS as REGISTRATION_MIGRATIONS
from services.registration.views import StudentsView
from services.scoring.app import MIGRATIONS as SCORING_MIGRATIONS
from services.scoring.views import BonusProjection, student_totals, voeux
from shared.contracts.events import (
    UPCASTERS,
    CollegeAvisGiven,
    InterviewHeld,
    InterviewScheduled,
    LyceeAvisGiven,
    StudentRegistered,
    UnreadableEntry,
    event_from_fields,
    event_to_fields,
)
from shared.contracts.streams import LoggedEvent, StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import make_engine
from shared.runtime.projection.dead_letters import DeadLetter, DeadLetters, retry
from shared.runtime.migrations import upgrade
from shared.runtime.settings import sqlite_url

MAX_ATTEMPTS = 3
POISONED = 1  # the student whose entry the view cannot take


@pytest.fixture
def view_metadata():  # noqa: ANN201
    """The view's tables, on each database `new_engine` makes (tests/conftest.py)."""
    return EntriesApplied().metadata


def registered():
    return StudentRegistered(college_uai="0752536Z", last_name="Nom", first_name="Prénom", class_name="3e A",
                             referent={"user_id": "r", "name": "Réf", "email": "r@ac-paris.fr"})


def college_avis():
    return CollegeAvisGiven(college_uai="0752536Z", avis="favorable", comment="Motivé.")


def scheduled(n: int, voeu: int = 0) -> InterviewScheduled:
    lycee, formation = VOEUX[voeu]
    return InterviewScheduled(interview_id=f"i{n}-{voeu}", lycee_uai=lycee, formation_code=formation,
                              scheduled_at="2027-03-10T09:00:00Z", mode="presentiel")


def held(n: int, voeu: int = 0) -> tuple[InterviewHeld, object]:
    lycee, formation = VOEUX[voeu]
    return InterviewHeld(interview_id=f"i{n}-{voeu}", lycee_uai=lycee, formation_code=formation,
                         held_at="2027-03-10T10:00:00Z", mode="presentiel", college_avis_present=True,
                         report={"motivation": "satisfaisante", "chances_of_success": "fragile", "advice": "Bien."}), proviseur(lycee)


def lycee_avis(n: int, avis: str, voeu: int = 0) -> tuple[LyceeAvisGiven, object]:
    lycee, formation = VOEUX[voeu]
    return LyceeAvisGiven(interview_id=f"i{n}-{voeu}", lycee_uai=lycee, formation_code=formation, avis=avis), proviseur(lycee)


def consumer(redis: Redis, engine: Engine, keys: StreamKeys, view) -> Consumer:  # noqa: ANN001
    return Consumer(redis, engine, keys, view, page_size=50, block_ms=50, max_attempts=MAX_ATTEMPTS, keystore=None)


async def poisoned_log(writer: LogWriter) -> dict[str, object]:
    """Student 1's third entry is the poison; students 0 and 2 are healthy; student 1 goes on after it."""
    await writer.open_campaign()
    await writer.students_from(0, 1)
    await writer.one(POISONED, "registration", registered())
    await writer.one(POISONED, "registration", college_avis())
    poison_entry, poison = await writer.one(POISONED, "registration", scheduled(POISONED))
    await writer.students_from(2, 1)
    later = [await writer.one(POISONED, "evaluation", *held(POISONED)),
             await writer.one(POISONED, "evaluation", *lycee_avis(POISONED, "favorable"))]
    return {"poison_entry": poison_entry, "poison_id": str(poison.event_id), "later": [entry for entry, _ in later]}


async def all_entries(redis: Redis, keys: StreamKeys) -> dict[tuple[str, str], dict[str, str]]:
    found = {}
    for key in [keys.rectorat, *keys.campaign_streams(CAMPAIGN)]:
        for entry_id, fields in await redis.xrange(key):
            found[(key, entry_id.decode())] = {k.decode(): v.decode() for k, v in fields.items()}
    return found


def of_student(entries: dict[tuple[str, str], dict[str, str]], n: int, healthy: bool) -> set[tuple[str, str]]:
    return {e for e, f in entries.items() if (f.get("student_ine") == ine_of(n)) == (not healthy)}


async def test_an_entry_the_view_keeps_failing_on_is_dead_lettered_and_the_students_later_entries_wait_behind_it(
    redis: Redis, keys: StreamKeys, new_engine: Callable[[], Engine]
) -> None:
    writer = LogWriter(redis, keys)
    log = await poisoned_log(writer)
    engine = new_engine()
    view = FailingFor({log["poison_id"]})
    await consumer(redis, engine, keys, view).catch_up()

    # tried once in its page, then MAX_ATTEMPTS times on its own
    assert view.tries == {log["poison_id"]: 1 + MAX_ATTEMPTS}
    entries = await all_entries(redis, keys)
    applied = view.read(engine)
    waiting = {(keys.service(CAMPAIGN, "registration"), log["poison_entry"])} | {
        (keys.service(CAMPAIGN, "evaluation"), e) for e in log["later"]}
    assert applied == dict.fromkeys(set(entries) - waiting, 1)  # everyone else, the student's first two entries too

    letters = await DeadLetters(redis, keys).letters()
    assert [(letter.entry_id, letter.view, letter.attempts) for letter in letters] == [
        (log["poison_entry"], "failing-for", MAX_ATTEMPTS), (log["later"][0], "failing-for", 0), (log["later"][1], "failing-for", 0)]
    dead, *parked = letters
    assert dead.stream == keys.service(CAMPAIGN, "registration")
    assert dead.event_type == "InterviewScheduled" and dead.event_id == log["poison_id"]
    assert "cannot apply" in dead.reason and not dead.parked
    assert all(p.reason == f"parked behind {dead.stream} {log['poison_entry']}" for p in parked)
    assert {letter.student for letter in letters} == {f"{CAMPAIGN}:{ine_of(POISONED)}"}

    # Restarted: the student still waits, the poison is not tried again, everyone else goes on.
    more, _ = await writer.one(POISONED, "evaluation", *lycee_avis(POISONED, "reserve"))
    await writer.students_from(3, 1)
    restarted_view = FailingFor({log["poison_id"]})
    restarted_engine = new_engine()
    await consumer(redis, restarted_engine, keys, restarted_view).catch_up()
    assert restarted_view.tries == {}
    entries = await all_entries(redis, keys)
    assert restarted_view.read(restarted_engine) == dict.fromkeys(set(entries) - waiting - {(keys.service(CAMPAIGN, "evaluation"), more)}, 1)
    assert [letter.entry_id for letter in await DeadLetters(redis, keys).letters()][-1] == more


class FailingAtFirst(FailingFor):
    """FailingFor whose failures pass: each of its events fails its first `times` tries, then applies."""

    def __init__(self, failing: set[str], times: int) -> None:
        super().__init__(failing)
        self.times = times

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        for logged in events:
            event_id = str(logged.event.event_id)
            if self.tries.get(event_id, 0) >= self.times:
                self.failing.discard(event_id)
        super().apply(conn, events)


def writable_at_once(engine: Engine) -> bool:
    """Whether another connection can lock the view's positions right now, without waiting for anyone."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        try:
            if sqlite:
                conn.exec_driver_sql("PRAGMA busy_timeout=0")
                conn.exec_driver_sql("UPDATE stream_positions SET position = position")
            else:
                conn.exec_driver_sql("SELECT * FROM stream_positions FOR UPDATE NOWAIT")
            return True
        except OperationalError:
            return False
        finally:
            conn.rollback()
            if sqlite:
                conn.exec_driver_sql("PRAGMA busy_timeout=30000")  # as make_engine set it


class PauseWatcher(Consumer):
    """A consumer that checks, in each pause between two attempts at a page, that the database is free."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.free_in_pauses: list[bool] = []

    async def _pause(self, attempts: int) -> None:
        self.free_in_pauses.append(writable_at_once(self.engine))
        await super()._pause(attempts)


async def test_an_entry_that_fails_for_a_while_is_tried_again_after_a_pause_that_holds_no_lock(
    redis: Redis, keys: StreamKeys, new_engine: Callable[[], Engine]
) -> None:
    writer = LogWriter(redis, keys)
    log = await poisoned_log(writer)
    engine = new_engine()
    view = FailingAtFirst({log["poison_id"]}, times=2)  # its page, then its first attempt alone
    watcher = PauseWatcher(redis, engine, keys, view, page_size=50, block_ms=50, max_attempts=MAX_ATTEMPTS, keystore=None)
    await watcher.catch_up()

    assert view.tries == {log["poison_id"]: 2}
    assert watcher.free_in_pauses == [True]  # the attempt's transaction was rolled back before the pause
    assert view.read(engine) == dict.fromkeys(await all_entries(redis, keys), 1)  # each entry exactly once
    assert await DeadLetters(redis, keys).letters() == []


async def test_a_retry_applies_the_dead_letter_and_those_behind_it_once_in_order_once_the_cause_is_fixed(
    redis: Redis, keys: StreamKeys, new_engine: Callable[[], Engine]
) -> None:
    writer = LogWriter(redis, keys)
    log = await poisoned_log(writer)
    engine = new_engine()
    await consumer(redis, engine, keys, FailingFor({log["poison_id"]})).catch_up()
    dead = DeadLetters(redis, keys)
    student = f"{CAMPAIGN}:{ine_of(POISONED)}"

    still_broken = FailingFor({log["poison_id"]})
    outcome = await retry(dead, redis, engine, still_broken, student, None)
    assert outcome.applied == [] and len(outcome.still_failing) == 3 and "cannot apply" in outcome.reason
    assert len(await dead.letters()) == 3

    fixed = FailingFor(set())
    outcome = await retry(dead, redis, engine, fixed, student, None)
    assert [letter.entry_id for letter in outcome.applied] == [log["poison_entry"], *log["later"]]
    assert outcome.still_failing == []
    entries = await all_entries(redis, keys)
    assert fixed.read(engine) == dict.fromkeys(entries, 1)  # each entry exactly once
    assert await dead.letters() == []
    assert all(letter.resolved_at for letter in await dead.letters(include_resolved=True))

    # The student is free: their next entry is applied as it comes, and nothing is retried twice.
    later, _ = await writer.one(POISONED, "evaluation", *lycee_avis(POISONED, "reserve"))
    await consumer(redis, engine, keys, fixed).catch_up()
    assert fixed.read(engine)[(keys.service(CAMPAIGN, "evaluation"), later)] == 1
    assert (await retry(dead, redis, engine, fixed, student, None)).applied == []
    assert set(fixed.read(engine).values()) == {1}


async def test_an_earlier_entry_of_the_student_delivered_later_by_the_other_stream_does_not_wait(
    redis: Redis, keys: StreamKeys, tmp_path: Path
) -> None:
    writer = LogWriter(redis, keys)
    await writer.open_campaign()
    await writer.one(POISONED, "registration", registered())  # version 1
    earlier, _ = await writer.one(POISONED, "evaluation", college_avis())  # version 2, read after the poison
    poison_entry, poison = await writer.one(POISONED, "registration", scheduled(POISONED))  # version 3
    after, _ = await writer.one(POISONED, "evaluation", *held(POISONED))  # version 4

    engine = make_engine(f"sqlite:///{tmp_path / 'view.sqlite3'}")
    view = FailingFor({str(poison.event_id)})
    view.metadata.create_all(engine)
    await consumer(redis, engine, keys, view).catch_up()
    applied = view.read(engine)
    evaluation = keys.service(CAMPAIGN, "evaluation")
    assert (evaluation, earlier) in applied and (evaluation, after) not in applied
    assert [letter.entry_id for letter in await DeadLetters(redis, keys).letters()] == [poison_entry, after]
    engine.dispose()


async def test_an_unreadable_entry_appended_by_hand_is_dead_lettered_at_once_while_later_events_go_on(
    redis: Redis, redis_url: str, keys: StreamKeys, tmp_path: Path
) -> None:
    writer = LogWriter(redis, keys)
    await writer.open_campaign()
    await writer.students_from(0, 1)
    await writer.one(POISONED, "registration", registered())
    _, template = await writer.one(POISONED, "registration", college_avis())
    fields = event_to_fields(template) | {"event_id": "1d9f4a52-0000-4000-8000-000000000001", "payload": "{not json"}
    stream = keys.service(CAMPAIGN, "registration")
    typed = subprocess.run(["redis-cli", "-u", redis_url, "XADD", stream, "*", *sum(fields.items(), ())],
                           capture_output=True, text=True, check=True)
    poison_entry = typed.stdout.strip()
    await writer.one(POISONED, "registration", scheduled(POISONED))
    await writer.students_from(2, 1)

    engine = make_engine(f"sqlite:///{tmp_path / 'view.sqlite3'}")
    view = EntriesApplied()
    view.metadata.create_all(engine)
    await consumer(redis, engine, keys, view).catch_up()

    (dead,) = await DeadLetters(redis, keys).letters()
    # Read once: reading is pure, a second try would fail the same way.
    assert (dead.entry_id, dead.stream, dead.attempts, dead.view) == (poison_entry, stream, 1, "entries-applied")
    with pytest.raises(UnreadableEntry) as unreadable:
        event_from_fields(fields)
    assert dead.reason == str(unreadable.value)
    # Not written by the append script, it is in no student's history (no student version): it parks nobody.
    assert dead.student == ""
    entries = await all_entries(redis, keys)
    assert view.read(engine) == dict.fromkeys(set(entries) - {(stream, poison_entry)}, 1)
    engine.dispose()


# --- passpro dlq, end to end -------------------------------------------------------------------------


async def run_passpro(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """The command, in a thread of its own as it runs its own event loop; its exit code and output."""
    capsys.readouterr()
    code = await asyncio.to_thread(passpro, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def totals(engine: Engine) -> dict[str, tuple[int, int]]:
    """Each student's total bonus and number of vœux, in scoring's projection."""
    with engine.connect() as conn:
        counts: dict[str, int] = {}
        for row in conn.execute(select(voeux.c.ine)):
            counts[row.ine] = counts.get(row.ine, 0) + 1
        return {r.ine: (r.total_bonus_points, counts.get(r.ine, 0))
                for r in conn.execute(select(student_totals.c.ine, student_totals.c.total_bonus_points))}


async def test_passpro_dlq_lists_the_dead_letters_and_retries_them_into_each_views_database_once_fixed(
    redis: Redis, redis_url: str, academie: str, keys: StreamKeys, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    for name in ("PASSPRO_DATABASE_URL", "PASSPRO_SCORING_DATABASE_URL", "PASSPRO_REGISTRATION_DATABASE_URL",
                 "PASSPRO_SCORING_DATABASE_SCHEMA", "PASSPRO_REGISTRATION_DATABASE_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PASSPRO_REDIS_URL", redis_url)
    monkeypatch.setenv("PASSPRO_ACADEMIE", academie)
    monkeypatch.setenv("PASSPRO_DATA_DIR", str(tmp_path))
    databases = {"scoring": (sqlite_url(tmp_path, "scoring"), SCORING_MIGRATIONS, BonusProjection),
                 "registration": (sqlite_url(tmp_path, "registration"), REGISTRATION_MIGRATIONS, StudentsView)}
    engines = {}
    for name, (url, migrations, _) in databases.items():
        upgrade(migrations, url, None)
        engines[name] = make_engine(url)

    async def catch_up() -> None:
        for name, (_, _, view) in databases.items():
            await Consumer(redis, engines[name], keys, view(), max_attempts=MAX_ATTEMPTS, keystore=None).catch_up()

    # A newer producer writes a lycée avis at schema version 2, which this code cannot read yet.
    writer = LogWriter(redis, keys)
    await writer.open_campaign()
    for payload in (registered(), college_avis(), scheduled(POISONED)):
        await writer.one(POISONED, "registration", payload)
    await writer.one(POISONED, "evaluation", *held(POISONED))
    poison_entry, _ = await writer.one(POISONED, "evaluation", *lycee_avis(POISONED, "favorable"), schema_version="2")
    second_voeu, _ = await writer.one(POISONED, "registration", scheduled(POISONED, voeu=1))
    await writer.students_from(2, 1)  # healthy, favorable
    await catch_up()

    scoring = engines["scoring"]
    assert totals(scoring) == {ine_of(POISONED): (0, 1), ine_of(2): (2500, 1)}

    code, out, _ = await run_passpro(capsys, "dlq", "list", "--json")
    listed = [DeadLetter(**{k: v for k, v in d.items() if k != "failed_at"}, fields={}) for d in json.loads(out)]
    assert code == 0
    assert [(d.view, d.entry_id, d.event_type, d.attempts) for d in listed] == [
        ("scoring-bonuses", poison_entry, "LyceeAvisGiven", 1),  # unreadable: dead-lettered at its first read
        ("scoring-bonuses", second_voeu, "InterviewScheduled", 0),
        ("registration-students", poison_entry, "LyceeAvisGiven", 1),
        ("registration-students", second_voeu, "InterviewScheduled", 0),
    ]
    assert "newer than this code" in listed[0].reason
    assert listed[1].reason == f"parked behind {keys.service(CAMPAIGN, 'evaluation')} {poison_entry}"
    assert all(d.stream.endswith(f":{CAMPAIGN}:evaluation") for d in listed[::2])
    code, out, _ = await run_passpro(capsys, "dlq", "list")
    assert code == 0 and poison_entry in out and "tentatives" in out

    code, _, err = await run_passpro(capsys, "dlq", "retry")  # nothing fixed yet: everything stays
    assert code == 1 and "toujours en échec" in err
    assert len(json.loads((await run_passpro(capsys, "dlq", "list", "--json"))[1])) == 4

    # The code that reads version 2 is deployed.
    monkeypatch.setattr(LyceeAvisGiven, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(UPCASTERS, ("LyceeAvisGiven", 1), lambda payload: payload)

    code, out, _ = await run_passpro(capsys, "dlq", "retry", listed[0].id)  # scoring's letters only
    assert code == 0 and "2 entrée(s) rejouée(s)" in out
    assert totals(scoring) == {ine_of(POISONED): (2500, 2), ine_of(2): (2500, 1)}
    left = json.loads((await run_passpro(capsys, "dlq", "list", "--json"))[1])
    assert [d["view"] for d in left] == ["registration-students"] * 2

    assert (await run_passpro(capsys, "dlq", "retry"))[0] == 0
    assert (await run_passpro(capsys, "dlq", "list"))[1].strip() == "Aucune lettre morte."
    with engines["registration"].connect() as conn:
        from services.registration.queries import college_students

        (student,) = [s for s in college_students(conn, CAMPAIGN, None) if s.ine == ine_of(POISONED)]
    assert len(student.interviews) == 2 and student.latest_lycee_avis(*VOEUX[0]).avis == "favorable"

    # Freed: the student's next entry is applied as it comes.
    await writer.one(POISONED, "evaluation", *lycee_avis(POISONED, "reserve"))
    await catch_up()
    assert totals(scoring)[ine_of(POISONED)] == (0, 2)
    for engine in engines.values():
        engine.dispose()
