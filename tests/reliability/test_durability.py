"""Durability of the log (issue 4, item 3): every append the log acknowledged survives a SIGKILL of the server.

Each test starts its own server on a free port and a temporary directory — Redis 7 with the production
configuration of `deploy/redis.conf` (only what is container-specific overridden), and the embedded
Valkey exactly as `passpro up` configures it. Several clients append through the real append script
under load; every acknowledged append is recorded; the server is killed with SIGKILL mid-load,
restarted on the same directory, and every acknowledged event must be there, by event_id, in its
service stream and in its student stream, with the same fields, at the positions the append returned.

A SIGKILL kills the process, not the machine: what reached the kernel survives it even without fsync.
So this shows that an append is in the append-only file before it is acknowledged; surviving a power
loss is `appendfsync always` (fsync before the reply), which the test checks is in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench.processes import free_port
from services.records.audit import Chain
from shared.contracts.events import Actor, CollegeAvisGiven, Event, InterviewScheduled, Referent, StudentRegistered, event_to_fields
from shared.contracts.streams import StreamKeys
from shared.runtime.log.client import Appended, EventLog

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_CONF = REPO_ROOT / "deploy" / "redis.conf"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
CLIENTS = 6
KILL_AFTER_ACKS = 300  # acknowledged appends before the kill; the clients keep appending meanwhile
STUDENTS_PER_CLIENT = 25
from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
COLLEGE, LYCEE, FORMATION = "0752536Z", "0752845K", "2473121131"
PRINCIPAL = Actor(user_id="principal-voltaire", role="principal", uai=COLLEGE)
STAFF = Actor(user_id="staff-gautier", role="lycee_staff", uai=LYCEE)
# Only what a container or this machine decides; every durability setting comes from the file as shipped.
CONTAINER_SPECIFIC = ("dir", "port", "bind", "daemonize", "logfile")


def production_config(data_dir: Path, port: int) -> str:
    """deploy/redis.conf with the container-specific lines replaced for a local, foreground server."""
    kept = [
        line
        for line in REDIS_CONF.read_text().splitlines()
        if not line.strip() or line.lstrip().startswith("#") or line.split()[0] not in CONTAINER_SPECIFIC
    ]
    overrides = {
        "dir": str(data_dir),
        "port": str(port),
        "bind": "127.0.0.1",
        "daemonize": "no",
        "logfile": str(data_dir / "redis.log"),
    }
    return "\n".join([*kept, *(f"{name} {value}" for name, value in overrides.items())]) + "\n"


# --- the two servers ---------------------------------------------------------------------------------


@dataclass
class LogServer:
    """A log server this test owns: start it, SIGKILL it, start it again on the same data."""

    start: Callable[[], str]  # returns the URL
    kill: Callable[[], None]
    stop: Callable[[], None]


def wait_until_served(url: str, timeout: float = 60) -> None:
    """Until the server answers PING (after a restart it answers LOADING while it reads its AOF)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with contextlib.closing(redis_sync.Redis.from_url(url, socket_connect_timeout=1)) as client:
                client.ping()
                return
        except RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def redis7_server(data_dir: Path) -> LogServer:
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed")
    port = free_port()
    conf = data_dir / "redis.conf"
    conf.write_text(production_config(data_dir, port))
    process: dict[str, subprocess.Popen] = {}

    def start() -> str:
        process["p"] = subprocess.Popen([REDIS_SERVER, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}/0"
        wait_until_served(url)
        return url

    def kill() -> None:
        process["p"].send_signal(signal.SIGKILL)
        process["p"].wait(10)

    def stop() -> None:
        if process["p"].poll() is None:
            process["p"].terminate()
            process["p"].wait(10)

    return LogServer(start, kill, stop)


def valkey_server(data_dir: Path) -> LogServer:
    from services.cli.up import _start_embedded_redis  # exactly what `passpro up` starts

    running: dict[str, object] = {}

    def start() -> str:
        running["s"] = _start_embedded_redis(data_dir)
        url = running["s"].connection_url
        wait_until_served(url)
        return url

    def kill() -> None:
        running["s"].terminate()  # SIGKILL

    def stop() -> None:
        if running["s"].is_running():
            running["s"].stop()

    return LogServer(start, kill, stop)


@pytest.fixture(params=["redis7", "valkey"])
def log_server(request, tmp_path: Path) -> Iterator[LogServer]:
    server = (redis7_server if request.param == "redis7" else valkey_server)(tmp_path)
    yield server
    server.stop()


# --- the load ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acknowledged:
    event: Event
    service: str
    appended: Appended


def next_step(ine: str, version: int, n: int) -> tuple[str, Event]:
    """A plausible next event of a student: registered first, then avis and interviews, on both services."""
    if version == 0:
        payload = StudentRegistered(
            college_uai=COLLEGE, last_name="Martin", first_name="Léa", class_name="3e B",
            referent=Referent(user_id="referent-dupont", name="Claire Dupont", email="claire.dupont@ac-paris.fr"),
        )
        service, actor = "registration", PRINCIPAL
    elif version % 2:
        payload = CollegeAvisGiven(college_uai=COLLEGE, avis="favorable", comment=f"Motivée, mise à jour n° {n}.")
        service, actor = "registration", PRINCIPAL
    else:
        payload = InterviewScheduled(
            interview_id=f"itw-{n}", lycee_uai=LYCEE, formation_code=FORMATION,
            scheduled_at="2027-03-20T09:00:00+01:00", mode="presentiel",
        )
        service, actor = "evaluation", STAFF  # any service stream will do: the log does not check rules
    event = Event(
        event_id=uuid4(), occurred_at="2027-03-02T10:00:00+01:00", campaign=CAMPAIGN, student_ine=ine, actor=actor,
        payload=payload,
    )
    return service, event


async def append_until_the_server_dies(url: str, keys: StreamKeys, client: int, acked: list[Acknowledged]) -> int:
    """Append for this client's own students until an append fails; return how many failed (0 or 1)."""
    redis = Redis.from_url(url, socket_timeout=30)
    log = EventLog(redis, keys)
    versions: dict[str, int] = {}
    try:
        for n in range(1_000_000):
            ine = f"{client:02d}{n % STUDENTS_PER_CLIENT:07d}DU"
            version = versions.get(ine, 0)
            service, event = next_step(ine, version, n)
            try:
                appended = await log.append(event, service, version, f"fp-{event.event_id}")
            except (RedisError, OSError):
                return 1  # in flight when the server died: stored or not, it was never acknowledged
            assert appended.status == "ok", appended
            versions[ine] = version + 1
            acked.append(Acknowledged(event, service, appended))
        return 0
    finally:
        with contextlib.suppress(RedisError, OSError):
            await redis.aclose()


async def load_then_kill(url: str, keys: StreamKeys, kill: Callable[[], None]) -> tuple[list[Acknowledged], int]:
    acked: list[Acknowledged] = []
    clients = [asyncio.create_task(append_until_the_server_dies(url, keys, c, acked)) for c in range(CLIENTS)]
    while len(acked) < KILL_AFTER_ACKS:
        if any(c.done() for c in clients):
            await asyncio.gather(*clients)  # a client failing early fails the test with its reason
            raise AssertionError("a client stopped before the kill")
        await asyncio.sleep(0.001)
    kill()
    failed = sum(await asyncio.gather(*clients))
    return acked, failed


# --- the test ------------------------------------------------------------------------------------------


def test_every_acknowledged_append_survives_a_sigkill_of_the_log_server(log_server: LogServer, academie: str):
    keys = StreamKeys(academie)
    url = log_server.start()
    with contextlib.closing(redis_sync.Redis.from_url(url, decode_responses=True)) as client:
        config = {k: v for name in ("appendonly", "appendfsync", "maxmemory-policy") for k, v in client.config_get(name).items()}
    assert config == {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}

    acked, in_flight = asyncio.run(load_then_kill(url, keys, log_server.kill))
    assert len(acked) >= KILL_AFTER_ACKS
    assert in_flight == CLIENTS, "every client ends on an append the dead server never acknowledged"

    url = log_server.start()  # same data directory
    with contextlib.closing(redis_sync.Redis.from_url(url, decode_responses=True)) as client:
        # Everything the restarted server holds, by event_id.
        in_service = {
            fields["event_id"]: (service, entry_id, fields)
            for service in ("registration", "evaluation")
            for entry_id, fields in client.xrange(keys.service(CAMPAIGN, service))
        }
        in_student = {
            fields["event_id"]: (entry_id, fields)
            for ine in {ack.event.student_ine for ack in acked}
            for entry_id, fields in client.xrange(keys.student(CAMPAIGN, ine))
        }
        lost, wrong = [], []
        for ack in acked:
            event_id = str(ack.event.event_id)
            if event_id not in in_service or event_id not in in_student:
                lost.append(event_id)
                continue
            service, service_id, fields = in_service[event_id]
            student_id, student_fields = in_student[event_id]
            expected = event_to_fields(ack.event) | {
                "recorded_at": ack.appended.recorded_at,
                "student_version": str(ack.appended.version),
            }
            if (
                (service, service_id, student_id) != (ack.service, *ack.appended.positions.as_dict().values())
                or {k: fields.get(k) for k in expected} != expected
                or student_fields != fields
            ):
                wrong.append(event_id)
        assert lost == [], f"{len(lost)} acknowledged appends lost of {len(acked)}"
        assert wrong == [], f"{len(wrong)} acknowledged appends stored elsewhere or with other fields"

        # Nothing appeared that was not attempted: at most the appends in flight at the kill.
        stored = sum(client.xlen(keys.service(CAMPAIGN, s)) for s in ("registration", "evaluation"))
        assert len(acked) <= stored <= len(acked) + in_flight
        # The chain survived the crash whole: no torn or half-written entry.
        for service in ("registration", "evaluation"):
            chain = Chain(keys.service(CAMPAIGN, service))
            assert [str(d) for i, f in client.xrange(keys.service(CAMPAIGN, service)) for d in chain.feed(i, f)] == []

        # And the log takes appends again, chained to what survived.
        ine = acked[0].event.student_ine
        version = client.xlen(keys.student(CAMPAIGN, ine))
        _, event = next_step(ine, version, 0)

        async def append_again() -> Appended:
            redis = Redis.from_url(url)
            try:
                return await EventLog(redis, keys).append(event, "evaluation", version, "fp")
            finally:
                await redis.aclose()

        again = asyncio.run(append_again())
        assert again.status == "ok"
        [(_, stored_again)] = client.xrange(keys.service(CAMPAIGN, "evaluation"), again.positions.service, again.positions.service)
        assert stored_again["prev_hash"] == chain.head_hash
