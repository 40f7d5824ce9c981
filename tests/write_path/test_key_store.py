"""The key store on the write path (shared/runtime/keys/store.py): a student's key for writing in one round trip to
PostgreSQL, whether it is made now or was made by another writer; the first key wins between two stores (two
processes' engines) racing for the same students; and, with no ping at checkout, a pooled connection whose backend
was killed (as by a PostgreSQL restart) costs the next write nothing but a second try on a fresh connection.

Real PostgreSQL (and SQLite for the race); the round trips are counted on the wire with libpq's trace."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from shared.runtime.keys.crypto import MasterKey, new_key
from shared.runtime.keys.store import KeyStore, StudentErased

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
from postgres_backends import kill_backends


@pytest.fixture
def pg_store(postgres_url: str, pg_schema: str) -> Iterator[KeyStore]:
    # Its own application name: the test finds its backends (and only them) in pg_stat_activity.
    name = f"keys_{pg_schema}"
    store = KeyStore.open(f"{postgres_url}?application_name={name}", MasterKey(new_key()), schema=pg_schema)
    store.application_name = name  # type: ignore[attr-defined]
    yield store
    store.close()


def _open_twice(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> list[KeyStore]:
    """Two stores on one key store, each with its own engine and pool: two processes' worth."""
    master = MasterKey(new_key())
    if kind == "sqlite":
        return [KeyStore.open(f"sqlite:///{tmp_path / 'keys.sqlite3'}", master) for _ in range(2)]
    url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
    return [KeyStore.open(url, master, schema=schema) for _ in range(2)]


class RoundTrips:
    """Counts the messages after which libpq waits for the server (a simple Query, or the Sync closing an
    extended query) on every connection of an engine, from libpq's own trace of the protocol."""

    def __init__(self, store: KeyStore) -> None:
        self.file = tempfile.TemporaryFile("w+")

        @event.listens_for(store.engine, "connect")
        def _trace(dbapi_connection, _record) -> None:
            from psycopg import pq

            dbapi_connection.pgconn.trace(self.file.fileno())
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

        store.engine.dispose()  # the connections made from now on are traced

    def of(self, call) -> int:  # noqa: ANN001
        self.file.seek(0)
        self.file.truncate()
        call()
        self.file.flush()
        self.file.seek(0)
        sent = [line.split("\t") for line in self.file.read().splitlines() if line.startswith("F")]
        return sum(1 for fields in sent if len(fields) > 2 and fields[2] in ("Query", "Sync"))


def test_a_key_for_writing_is_one_round_trip_made_now_or_made_before(pg_store: KeyStore) -> None:
    trips = RoundTrips(pg_store)
    pg_store.keyring([(CAMPAIGN, "000000000AA")])  # the pool's first connection (its setup is not counted)
    assert trips.of(lambda: pg_store.keyring_for_writing(CAMPAIGN, "123456789AB")) == 1  # made now
    assert trips.of(lambda: pg_store.keyring_for_writing(CAMPAIGN, "123456789AB")) == 0  # held in memory
    other_writer = KeyStore(pg_store.engine, pg_store.master)  # nothing held: another service's process
    assert trips.of(lambda: other_writer.keyring_for_writing(CAMPAIGN, "123456789AB")) == 1  # made before
    assert trips.of(lambda: pg_store.keyring([(CAMPAIGN, "123456789AB")])) == 1  # a reader's: no BEGIN/ROLLBACK
    made = pg_store.keyring_for_writing(CAMPAIGN, "123456789AB").keys[(CAMPAIGN, "123456789AB")]
    assert other_writer.keyring_for_writing(CAMPAIGN, "123456789AB").keys[(CAMPAIGN, "123456789AB")] == made
    pg_store.destroy(CAMPAIGN, "123456789AB")
    with pytest.raises(StudentErased):  # a destroyed row comes back from the same one statement
        KeyStore(pg_store.engine, pg_store.master).keyring_for_writing(CAMPAIGN, "123456789AB")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_stores_racing_for_the_same_students_first_keys_both_get_the_one_stored(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    stores = _open_twice(kind, tmp_path, request)
    ines = [f"{n:09d}RK" for n in range(40)]
    start = threading.Barrier(2, timeout=60)  # a writer failing breaks it: no hang

    def write_all(store: KeyStore) -> list[bytes]:
        keys = []
        for ine in ines:
            start.wait()  # both ask for the same student at the same instant
            keys.append(store.keyring_for_writing(CAMPAIGN, ine).keys[(CAMPAIGN, ine)])
        return keys

    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(write_all, stores)
        assert first == second
        stored = stores[0].keyring([(CAMPAIGN, ine) for ine in ines]).keys
        assert [stored[(CAMPAIGN, ine)] for ine in ines] == first
    finally:
        for store in stores:
            store.close()


def test_a_write_after_its_pooled_connections_were_killed_gets_its_key(pg_store: KeyStore, postgres_url: str) -> None:
    """What a PostgreSQL restart does to a pool: every connection it holds is dead, and no ping finds it out."""
    # Three connections in the pool (three writers at once), then their backends killed.
    start = threading.Barrier(3, timeout=60)

    def hold(n: int) -> None:
        with pg_store.engine.connect() as conn:
            start.wait()
            conn.execute(text("SELECT 1"))

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(hold, range(3)))
    assert pg_store.engine.pool.checkedin() == 3
    assert kill_backends(postgres_url, pg_store.application_name) == 3
    dropped: list[bool] = []
    event.listen(pg_store.engine, "handle_error", lambda context: dropped.append(context.is_disconnect))

    key = pg_store.keyring_for_writing(CAMPAIGN, "223456789AB").keys[(CAMPAIGN, "223456789AB")]
    assert dropped == [True]  # one dead connection met, its statement run again on a new one
    # That failure renewed the whole pool: the readers after it never meet the two other dead connections.
    with ThreadPoolExecutor(3) as pool:
        read = list(pool.map(lambda _: pg_store.keyring([(CAMPAIGN, "223456789AB")]).keys, range(6)))
    assert read == [{(CAMPAIGN, "223456789AB"): key}] * 6
    assert KeyStore(pg_store.engine, pg_store.master).keyring_for_writing(CAMPAIGN, "223456789AB").keys == {
        (CAMPAIGN, "223456789AB"): key
    }
    assert dropped == [True]


def test_a_database_out_of_reach_is_raised_not_retried_forever() -> None:
    """Nothing listens on the port: the error reaches the caller (the services answer 503) after one try."""
    store = KeyStore(create_engine("postgresql+psycopg://postgres@127.0.0.1:9199/test",
                                   connect_args={"connect_timeout": 2}), MasterKey(new_key()))
    with pytest.raises(OperationalError):
        store.keyring_for_writing(CAMPAIGN, "323456789AB")
    store.close()
