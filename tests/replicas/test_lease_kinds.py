"""The view's lease on each kind of database (shared/runtime/projection/lease.py), and a standby's reads."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from shared.runtime.db import ensure_schema, make_engine
from shared.runtime.projection.lease import AdvisoryLease, FileLease, NoLease, holders, view_lease


def test_on_sqlite_one_process_holds_the_file_lock_until_it_lets_go(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'view.sqlite3'}")
    first, second = view_lease(engine, "scoring-bonuses"), view_lease(engine, "scoring-bonuses")
    assert isinstance(first, FileLease)
    assert first.path == tmp_path / "view.sqlite3.scoring-bonuses.lease"
    assert first.try_acquire()
    assert not second.try_acquire()
    assert view_lease(engine, "other-view").try_acquire()  # one lease per view
    first.release()
    assert not first.still_held()
    assert second.try_acquire()
    assert isinstance(view_lease(make_engine("sqlite://"), "v"), NoLease)


def test_on_postgresql_one_session_holds_it_and_loses_it_with_its_session(postgres_url: str, pg_schema: str) -> None:
    engine = make_engine(postgres_url, pg_schema)
    ensure_schema(postgres_url, f"{pg_schema}_b")
    other_schema = make_engine(postgres_url, f"{pg_schema}_b")
    try:
        first, second = view_lease(engine, "scoring-bonuses"), view_lease(engine, "scoring-bonuses")
        assert isinstance(first, AdvisoryLease)
        assert first.try_acquire()
        assert not second.try_acquire()
        elsewhere = view_lease(other_schema, "scoring-bonuses")
        assert elsewhere.try_acquire()  # the same view in another schema: a lease of its own
        elsewhere.release()
        with engine.connect() as conn:
            (pid,) = holders(conn, "scoring-bonuses")
            assert first.still_held()
            # the holder's session ends (a lost machine, a killed process): the lease is free, and the holder knows
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
            assert not first.still_held()
            assert second.try_acquire()
            assert holders(conn, "scoring-bonuses") != [pid]
            assert len(holders(conn, "scoring-bonuses")) == 1
            second.release()
            assert holders(conn, "scoring-bonuses") == []
    finally:
        engine.dispose()
        other_schema.dispose()
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{pg_schema}_b"'))
        engine.dispose()
