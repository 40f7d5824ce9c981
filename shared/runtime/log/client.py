"""The event log on Redis: the atomic append and the reads a decision needs."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

from redis.asyncio import Redis
from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.exceptions import (
    AskError, ClusterDownError, MovedError, NoScriptError, RedisError, ResponseError, SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.contracts.events import Event, UnknownEventType, event_from_fields, event_to_fields
from shared.contracts.personal import Keyring, has_personal_fields
from shared.contracts.streams import HASH, PREV_HASH, LoggedEvent, StreamKeys, logged_event_from_entry
from shared.domain.student_file import CampaignFile, fold_campaign
from shared.runtime.keys.store import KeyStore

log = logging.getLogger(__name__)

# On a Redis Cluster, how long an append keeps following its shard (a slot moved, the shard's primary lost
# and its replica promoted: cluster-node-timeout and the election) before the error goes to the caller.
SHARD_RETRY_S = 15.0
SHARD_MOVING = (
    AskError, MovedError, TryAgainError, ClusterDownError, SlotNotCoveredError, RedisConnectionError,
    RedisTimeoutError, OSError,
)


def append_script() -> str:
    """The append script's source (append.lua, beside this module), read when a client is built, not at import."""
    return files("shared.runtime.log").joinpath("append.lua").read_text()


def entry_hash(fields: Mapping[str, str]) -> str:
    """The hash append.lua gives an entry: sha1 over its `prev_hash`, then each field but `hash`
    as `name=len:value` (length in bytes) in stored order, joined by newlines. Kept beside the
    script it mirrors; tests/shared/test_log.py holds it to the script's output."""
    # surrogateescape gives back the exact bytes Redis holds, even for an entry that is not UTF-8.
    parts = [fields.get(PREV_HASH, "").encode("utf-8", "surrogateescape")]
    for name, value in fields.items():
        if name != HASH:
            raw = value.encode("utf-8", "surrogateescape")
            parts.append(b"%s=%d:%s" % (name.encode("utf-8", "surrogateescape"), len(raw), raw))
    return hashlib.sha1(b"\n".join(parts)).hexdigest()


@dataclass(frozen=True)
class Positions:
    service: str
    student: str
    more: tuple[tuple[str, str], ...] = ()  # (stream key, entry id) in each further stream the entry went to

    def as_dict(self) -> dict[str, str]:
        return {"service": self.service, "student": self.student}


@dataclass(frozen=True)
class Appended:
    status: Literal["ok", "duplicate", "conflict"]
    positions: Positions | None = None
    recorded_at: str | None = None
    version: int | None = None
    fingerprint: str | None = None  # for a duplicate: the fingerprint stored with the original


@dataclass(frozen=True)
class PriorAppend:
    """What the log remembers of an event id: the request's fingerprint and where it went."""

    fingerprint: str
    positions: Positions


class NotReplicated(RedisError):
    """The entry (or the original a retry found) is on the primary but not confirmed on enough replicas in
    time (SPEC §9): the API answers 503 as for a log out of reach — the write may have been stored, and a
    retry with the same event_id is safe (it finds the original and waits for its replication again)."""


@dataclass(frozen=True)
class Replication:
    """What an acknowledged write needs (SPEC §9): on `replicas` replicas within `timeout_ms`, by WAIT N (N
    replicas hold it; the primary's own append-only file has it before the reply with appendfsync always).
    With `aof`, WAITAOF 1 N where the server has it (Redis 7.2+, Valkey 8+): fsynced in the primary's and N
    replicas' append-only files — measured at a median 1,006 ms a write with appendfsync everysec (the next
    fsync) against 0.73 ms for WAIT (Valkey 9.1, loopback), hence not the default."""

    replicas: int = 0
    timeout_ms: int = 2000
    aof: bool = False


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(raw: dict) -> dict[str, str]:
    return {_decode(k): _decode(v) for k, v in raw.items()}


def _prior(value: str) -> PriorAppend:
    fingerprint, service_id, student_id = value.rsplit("|", 2)
    return PriorAppend(fingerprint, Positions(service_id, student_id))


async def on_shard(cluster: RedisCluster, key: str, *commands: tuple) -> list:
    """On a Redis Cluster: `commands` sent together on one connection to the primary owning `key`'s slot
    (the académie's shard: every key of the log carries its hash tag), so a WAIT after them counts that
    primary's replicas — redis-py's cluster pipeline refuses WAIT. A MOVED or ASK (the slot moved), a
    CLUSTERDOWN or a lost connection (the shard's primary lost, the cluster promoting its replica) reloads
    the slot table and sends them again, for about SHARD_RETRY_S: safe for the append, whose event id
    makes a second run answer `duplicate`; past it the error goes to the caller (503)."""
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + SHARD_RETRY_S, 0.05
    while True:
        failure: Exception
        try:
            await cluster.initialize()
            node = cluster.get_node_from_key(key)
            pipeline = [PipelineCommand(i, *command) for i, command in enumerate(commands)]
            await node.execute_pipeline(pipeline)
            results = [command.result for command in pipeline]
            failure = next((r for r in results if isinstance(r, SHARD_MOVING)), None)
            if failure is None:
                return results
        except SHARD_MOVING as exc:
            failure = exc
        if loop.time() >= deadline:
            raise failure
        log.warning("the log's shard for %s is moving (%s): slots reloaded, sent again", key, failure)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)
        try:
            await cluster.nodes_manager.initialize()
        except (RedisError, OSError):
            pass  # no node answered yet: tried again at the next round


async def confirm_read(redis: Redis | RedisCluster, replication: Replication, marker: str, last: Mapping[str, str]) -> None:
    """Before a view applies entries it read (SPEC §9): each stream's last entry read (`last`: stream -> entry
    id) is still on the log's primary, and on `replication.replicas` replicas — else NotReplicated, and the
    page waits. One round trip: the checks, one write of the reader's own `marker` (in the académie's hash
    tag: on a cluster, the streams' shard) and WAIT, on one connection; the write comes after the entries in
    the primary's replication stream, so its acknowledgement covers them. The checks make it the same server
    that served the read: after a failover the new primary may lack an entry the old one gave."""
    checks = [("XRANGE", key, entry_id, entry_id) for key, entry_id in last.items()]
    commands = [*checks, ("SET", marker, repr(time.time())), ("WAIT", replication.replicas, replication.timeout_ms)]
    if isinstance(redis, RedisCluster):
        results = await on_shard(redis, marker, *commands)
    else:
        async with redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            results = await pipe.execute(raise_on_error=False)
    failure = next((r for r in results if isinstance(r, Exception)), None)
    if failure is not None:
        raise failure
    *found, _, waited = results
    lost = [key for key, entries in zip(last, found, strict=True) if not entries]
    if lost:
        raise NotReplicated(f"entries read are not on the log's primary any more (a failover?): {lost}")
    if int(waited) < replication.replicas:
        raise NotReplicated(
            f"entries read on {int(waited)} replica(s) of the {replication.replicas} required "
            f"after {replication.timeout_ms} ms: not applied yet"
        )


class EventLog:
    """Appends and reads events; the only code that writes the log's streams.

    With a key store, a student's personal fields are sealed with their key on
    append and opened on read. Without one (tests of the older format only),
    they are written in clear and a sealed entry cannot be read."""

    def __init__(
        self, redis: Redis, keys: StreamKeys, keystore: KeyStore | None = None,
        replication: Replication | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.keystore = keystore
        self.replication = replication or Replication()
        self._append = redis.register_script(append_script())
        self._waitaof = self.replication.aof  # until the server says it has no WAITAOF (or no append-only file)

    def _queue_wait(self, pipe) -> None:
        wanted = self.replication
        if self._waitaof:
            pipe.execute_command("WAITAOF", 1, wanted.replicas, wanted.timeout_ms)
        else:
            pipe.execute_command("WAIT", wanted.replicas, wanted.timeout_ms)

    async def _replicated(self, waited) -> bool:
        """Whether the wait's answer says enough replicas have the write; a server without WAITAOF (or without
        appendonly) switches this log to WAIT for good and confirms again."""
        if isinstance(waited, ResponseError) and self._waitaof:
            log.warning("WAITAOF refused by the log (%s): acknowledging writes with WAIT", waited)
            self._waitaof = False
            await self.confirm_replicated()
            return True
        if isinstance(waited, Exception):
            raise waited
        count = int(waited[1]) if isinstance(waited, list) else int(waited)
        if count < self.replication.replicas:
            raise NotReplicated(
                f"write on {count} replica(s) of the {self.replication.replicas} required "
                f"after {self.replication.timeout_ms} ms"
            )
        return True

    def _wait_command(self) -> tuple:
        wanted = self.replication
        if self._waitaof:
            return ("WAITAOF", 1, wanted.replicas, wanted.timeout_ms)
        return ("WAIT", wanted.replicas, wanted.timeout_ms)

    async def _on_shard(self, key: str, *commands: tuple) -> list:
        return await on_shard(self.redis, key, *commands)  # type: ignore[arg-type]

    async def confirm_replicated(self) -> None:
        """Wait until everything this client's primary holds now (e.g. an original a retry found) is on enough
        replicas: WAIT counts from the connection's last write, so one small write goes first, on the same
        connection (the log's own replication marker, outside every campaign's keys)."""
        if not self.replication.replicas:
            return
        marker = f"{self.keys.prefix}:replication"
        if isinstance(self.redis, RedisCluster):
            _, waited = await self._on_shard(marker, ("INCR", marker), self._wait_command())
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(marker)
                self._queue_wait(pipe)
                _, waited = await pipe.execute(raise_on_error=False)
        await self._replicated(waited)

    async def _run_append(self, keys: list[str], args: list[str]) -> list:
        """The append script, then (with replicas required) the wait, on one connection; a primary without the
        script (a new one after a failover) has it loaded, and the call runs again."""
        if not self.replication.replicas:
            return await self._append(keys=keys, args=args)
        cluster = isinstance(self.redis, RedisCluster)
        for _ in range(3):
            if cluster:  # the académie's shard's primary, on one of its connections
                reply, waited = await self._on_shard(
                    keys[0], ("EVALSHA", self._append.sha, len(keys), *keys, *args), self._wait_command()
                )
            else:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.evalsha(self._append.sha, len(keys), *keys, *args)
                    self._queue_wait(pipe)
                    reply, waited = await pipe.execute(raise_on_error=False)
            if isinstance(reply, NoScriptError):
                await self.redis.script_load(self._append.script)  # nothing was run: load it and run again
                continue
            if isinstance(reply, Exception):
                raise reply
            if _decode(reply[0]) == "duplicate":
                await self.confirm_replicated()  # the original's replication, not this read's
            elif _decode(reply[0]) == "ok":
                await self._replicated(waited)
            return reply
        raise NotReplicated("the append script could not be loaded on the log's primary")

    async def _keyring_for_writing(self, event: Event) -> Keyring | None:
        if self.keystore is None or not event.student_ine or not has_personal_fields(event.event_type):
            return None
        held = self.keystore.held_for_writing(event.campaign, event.student_ine)
        if held is not None:  # no thread hop for a key already in memory
            return held
        return await asyncio.to_thread(self.keystore.keyring_for_writing, event.campaign, event.student_ine)

    async def keyring(self, campaign: str, ine: str) -> Keyring | None:
        """The student's keys for reading their entries (None without a key store)."""
        if self.keystore is None:
            return None
        return await self.keystore.keyring_async([(campaign, ine)])

    def _target(self, event: Event, service: str) -> tuple[str, str]:
        if event.student_ine is None:
            slot_id = getattr(event.payload, "SLOT_STREAM", False) and event.payload.slot_id
            if slot_id:  # a slot's own event: evaluation's stream, and the slot's, whose version it records
                return self.keys.service(event.campaign, service), self.keys.slot(event.campaign, slot_id)
            return self.keys.rectorat, self.keys.rectorat
        return self.keys.service(event.campaign, service), self.keys.student(event.campaign, event.student_ine)

    def _ids_key(self, event: Event) -> str:
        home = event.student_ine or getattr(event.payload, "SLOT_STREAM", False)
        return self.keys.event_ids(event.campaign if home else None)

    async def append(
        self, event: Event, service: str, expected_version: int, fingerprint: str,
        more: Mapping[str, int] | None = None,
    ) -> Appended:
        """Append `event` to its service stream and the student's stream (a slot event: the slot's), if the
        student is still at `expected_version` and each stream of `more` (key -> expected version, e.g. the
        slots a booking takes or frees a place in) at its own; the entry goes to all of them or to none, in
        the one script. A known event_id answers `duplicate` with the original positions."""
        service_key, student_key = self._target(event, service)
        more = dict(more or {})
        args: list[str] = [str(expected_version), str(event.event_id), fingerprint, *map(str, more.values())]
        for name, value in event_to_fields(event, await self._keyring_for_writing(event)).items():
            args += [name, value]
        keys = [service_key, student_key, self._ids_key(event), *more]
        reply = [_decode(x) for x in await self._run_append(keys, args)]
        match reply:
            case ["ok", service_id, student_id, recorded_at, version, *more_ids] if len(more_ids) == len(more):
                positions = Positions(service_id, student_id, tuple(zip(more, more_ids)))
                return Appended("ok", positions, recorded_at, int(version))
            case ["duplicate", seen]:
                prior = _prior(seen)
                return Appended("duplicate", prior.positions, fingerprint=prior.fingerprint)
            case ["conflict", *_]:
                return Appended("conflict")
        raise RuntimeError(f"unexpected reply from the append script: {reply!r}")

    async def read_stream(self, key: str, keyring: Keyring | None = None) -> list[LoggedEvent]:
        """Every entry of one stream (e.g. a slot's), in order; sealed fields open with `keyring` (a
        decision passes ErasedKeyring(): it never reads a personal field)."""
        entries = await self.redis.xrange(key, "-", "+")
        return [logged_event_from_entry(key, _decode(i), _fields(f), keyring) for i, f in entries]

    async def prior_append(self, event_id: str, campaign: str | None) -> PriorAppend | None:
        seen = await self.redis.hget(self.keys.event_ids(campaign), event_id)
        if not seen:
            return None
        await self.confirm_replicated()  # a retry answers as the original only once the original is replicated
        return _prior(_decode(seen))

    async def read_student(self, campaign: str, ine: str, keyring: Keyring | None = None) -> list[LoggedEvent]:
        """The student's history; `keyring` given (e.g. ErasedKeyring() for a decision, which never reads a
        personal field) spares the key store's query."""
        key = self.keys.student(campaign, ine)
        entries = await self.redis.xrange(key, "-", "+")
        if keyring is None and entries:
            keyring = await self.keyring(campaign, ine)
        return [logged_event_from_entry(key, _decode(i), _fields(f), keyring) for i, f in entries]

    async def read_entry(self, key: str, entry_id: str) -> LoggedEvent:
        entries = await self.redis.xrange(key, entry_id, entry_id)
        if not entries:
            raise LookupError(f"no entry {entry_id} in {key}")
        entry_id_, raw = entries[0]
        fields = _fields(raw)
        keyring = await self.keyring(fields.get("campaign", ""), fields.get("student_ine", ""))
        return logged_event_from_entry(key, _decode(entry_id_), fields, keyring)

    async def read_rectorat(self) -> list[Event]:
        events = []
        for _, fields in await self.redis.xrange(self.keys.rectorat, "-", "+"):
            try:
                events.append(event_from_fields(_fields(fields)))
            except UnknownEventType as exc:
                log.warning("skipping an unknown event type on the rectorat stream: %s", exc)
        return events

    async def read_campaign(self, campaign: str) -> CampaignFile:
        return fold_campaign(campaign, await self.read_rectorat())

    async def rectorat_version(self) -> int:
        return await self.redis.xlen(self.keys.rectorat)
