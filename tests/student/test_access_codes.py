"""The access codes' store and rules (services/registration/access_codes.py), on SQLite and PostgreSQL, through
registration's migrations: hashed with a salt, a new code revokes the old, expiry, and the limit of wrong tries
counted in the database (two engines = two processes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from services.registration import access_codes as ac
from services.registration.app import MIGRATIONS
from services.registration.views import access_codes, sign_in_failures
from shared.runtime.db import make_engine
from shared.runtime import tries
from shared.runtime.migrations import upgrade

INE = "123456789AB"
OTHER_INE = "1234567890A"
COLLEGE = "0752536Z"
NOW = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'registration.sqlite3'}", None
    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
    upgrade(MIGRATIONS, url, schema)
    yield url, schema


@pytest.fixture
def engine(database) -> Iterator[Engine]:
    engine = make_engine(*database)
    yield engine
    engine.dispose()


def issue(engine: Engine, code: str, at: datetime = NOW, ine: str = INE, days: int = ac.CODE_DAYS) -> None:
    ac.store_code(
        engine, campaign="2027", ine=ine, college_uai=COLLEGE, code=code, issued_by="referent-dupont",
        issued_at=at, expires_at=at + timedelta(days=days),
    )


def test_a_code_is_twelve_unambiguous_characters_in_three_groups():
    codes = {ac.new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(ac.ALPHABET)
    assert not set("01OIL") & set(ac.ALPHABET)


def test_only_a_salted_hash_is_stored_and_the_code_is_typed_back_loosely(engine):
    issue(engine, "ABCD-EFGH-JKMN")
    with engine.connect() as conn:
        stored = conn.execute(select(access_codes.c.code_hash)).scalar_one()
    assert "ABCD" not in stored and "abcd" not in stored
    assert stored.startswith("scrypt$")
    assert ac.hash_code("ABCD-EFGH-JKMN") != ac.hash_code("ABCD-EFGH-JKMN")  # a new salt each time
    outcome = ac.verify_access_code(engine, INE, " abcd efgh-jkmn ", NOW)
    assert outcome.accepted and outcome.campaign == "2027" and outcome.college_uai == COLLEGE
    assert outcome.code_expires_at == NOW + timedelta(days=ac.CODE_DAYS)


def test_a_new_code_revokes_the_old_one(engine):
    issue(engine, "AAAA-AAAA-AAAA")
    issue(engine, "BBBB-BBBB-BBBB", at=NOW + timedelta(minutes=1))
    assert not ac.verify_access_code(engine, INE, "AAAA-AAAA-AAAA", NOW + timedelta(minutes=2)).accepted
    assert ac.verify_access_code(engine, INE, "BBBB-BBBB-BBBB", NOW + timedelta(minutes=2)).accepted


def test_an_expired_code_is_refused(engine):
    issue(engine, "AAAA-AAAA-AAAA", days=1)
    assert ac.verify_access_code(engine, INE, "AAAA-AAAA-AAAA", NOW + timedelta(hours=23)).accepted
    assert not ac.verify_access_code(engine, INE, "AAAA-AAAA-AAAA", NOW + timedelta(days=1)).accepted


def test_five_wrong_tries_lock_the_ine_even_for_the_right_code_until_the_wait_is_over(engine, database):
    issue(engine, "AAAA-AAAA-AAAA")
    other_process = make_engine(*database)  # the count is in the database: another process sees it
    try:
        for n in range(ac.MAX_FAILURES):
            checker = engine if n % 2 else other_process
            outcome = ac.verify_access_code(checker, INE, "WRONG-CODE", NOW + timedelta(seconds=n))
            assert not outcome.accepted and not outcome.locked
        locked = ac.verify_access_code(other_process, INE, "AAAA-AAAA-AAAA", NOW + timedelta(seconds=10))
    finally:
        other_process.dispose()
    assert locked.locked and not locked.accepted
    assert locked.retry_after == ac.LOCK_SECONDS - 6  # locked at the 5th try (NOW + 4 s), asked 6 s later
    still = ac.verify_access_code(engine, INE, "AAAA-AAAA-AAAA", NOW + timedelta(seconds=4 + ac.LOCK_SECONDS - 1))
    assert still.locked and still.retry_after == 1
    after = ac.verify_access_code(engine, INE, "AAAA-AAAA-AAAA", NOW + timedelta(seconds=4 + ac.LOCK_SECONDS))
    assert after.accepted
    with engine.connect() as conn:  # the right code clears the count
        assert conn.execute(select(sign_in_failures)).all() == []


def test_a_right_code_clears_the_wrong_tries_before_it(engine):
    issue(engine, "AAAA-AAAA-AAAA")
    for n in range(ac.MAX_FAILURES - 1):
        ac.verify_access_code(engine, INE, "nope", NOW + timedelta(seconds=n))
    assert ac.verify_access_code(engine, INE, "AAAA-AAAA-AAAA", NOW + timedelta(seconds=10)).accepted
    assert not ac.verify_access_code(engine, INE, "nope", NOW + timedelta(seconds=11)).locked
    assert not ac.verify_access_code(engine, INE, "AAAA-AAAA-AAAA", NOW + timedelta(seconds=12)).locked


def test_an_ine_with_no_code_locks_the_same_way_so_the_answers_tell_nobody_who_has_one(engine):
    for n in range(ac.MAX_FAILURES):
        assert not ac.verify_access_code(engine, OTHER_INE, "AAAA-AAAA-AAAA", NOW + timedelta(seconds=n)).locked
    assert ac.verify_access_code(engine, OTHER_INE, "AAAA-AAAA-AAAA", NOW + timedelta(seconds=9)).locked


def test_old_wrong_tries_are_forgotten_and_one_ine_does_not_lock_another(engine):
    issue(engine, "AAAA-AAAA-AAAA")
    issue(engine, "BBBB-BBBB-BBBB", ine=OTHER_INE)
    for n in range(ac.MAX_FAILURES - 1):
        ac.verify_access_code(engine, INE, "nope", NOW + timedelta(seconds=n))
    later = NOW + timedelta(seconds=ac.FAILURES_KEPT_SECONDS + 60)
    assert not ac.verify_access_code(engine, INE, "nope", later).locked  # the 4 earlier ones are gone: 1 now
    for n in range(ac.MAX_FAILURES):
        ac.verify_access_code(engine, OTHER_INE, "nope", later + timedelta(seconds=n))
    assert ac.verify_access_code(engine, OTHER_INE, "BBBB-BBBB-BBBB", later + timedelta(seconds=9)).locked
    assert ac.verify_access_code(engine, INE, "AAAA-AAAA-AAAA", later + timedelta(seconds=9)).accepted


def test_erasing_a_student_removes_their_code_and_tries(engine):
    issue(engine, "AAAA-AAAA-AAAA")
    ac.verify_access_code(engine, INE, "nope", NOW)
    ac.erase_student(engine, INE)
    with engine.connect() as conn:
        assert conn.execute(select(access_codes)).all() == []
        assert conn.execute(select(sign_in_failures)).all() == []
    assert ac.current_code(engine, INE) is None


def test_old_tries_are_deleted_without_another_try_and_a_running_locks_row_stays(engine, monkeypatch):
    monkeypatch.setattr(tries, "LOCK_SECONDS", 2 * 3600)  # a lock longer than the hour a try is kept
    for n in range(ac.MAX_FAILURES):  # the last one locks INE, at NOW + 4 s
        ac.verify_access_code(engine, INE, "nope", NOW + timedelta(seconds=n))
    ac.verify_access_code(engine, OTHER_INE, "nope", NOW + timedelta(seconds=10))

    def kept() -> set[str]:
        with engine.connect() as conn:
            return set(conn.execute(select(sign_in_failures.c.ine)).scalars())

    tries.forget_old_tries(engine, [sign_in_failures], NOW + timedelta(hours=1, seconds=10))
    assert kept() == {INE, OTHER_INE}  # OTHER_INE's try is exactly an hour old
    tries.forget_old_tries(engine, [sign_in_failures], NOW + timedelta(hours=1, seconds=11))
    assert kept() == {INE}  # locked until NOW + 2 h 4 s
    tries.forget_old_tries(engine, [sign_in_failures], NOW + timedelta(hours=2, seconds=4))
    assert kept() == {INE}
    tries.forget_old_tries(engine, [sign_in_failures], NOW + timedelta(hours=2, seconds=5))
    assert kept() == set()
