"""The notifier at work: a consumer group on the campaign's service streams (FastStream's Redis stream
subscribers), the sends, the ledger, the timer for reminders and SMTP retries.

What FastStream 0.7 does not do is done here (../shared/FASTSTREAM_NOTES.md): the group is created at `0` with
MKSTREAM before the broker starts (a group made at `$` would skip the campaign's history); our own pending list
is drained at start (a crash leaves read, unacknowledged entries there) and entries left pending by any consumer
are claimed with XAUTOCLAIM; acks are manual, after the send is recorded; the lag is read from XINFO GROUPS.

One entry: the student's history is read and folded; the convocations it causes are sent and each recorded in
the ledger with the entry's position in one transaction, then the entry is acknowledged. A crash between the
SMTP answer and the commit sends that e-mail once more (the entry is delivered again), never loses it. A failing
SMTP server never holds the log: the message goes to the retry queue (durable) and the entry is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import email.policy
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from faststream.redis import RedisStreamMessage
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import Engine

from services.notifier import ledger
from services.notifier.domain import Notification, convocations, followed_campaigns, reminders
from services.notifier.mail import Mail, SmtpConnection, SmtpError, parse_smtp_url, render
from services.notifier.settings import NotifierSettings
from shared.contracts.events import InterviewSlotOpened
from shared.contracts.reference import ReferenceData
from shared.contracts.streams import StreamKeys
from shared.domain.student_file import fold
from shared.runtime.log.client import EventLog
from shared.runtime.redis_connect import min_replicas

log = logging.getLogger("passpro.notifier")

Clock = Callable[[], datetime]
Sender = Callable[[Mail], Awaitable[None]]  # raises SmtpError

# The events after which a student's reminders may change (the others change nothing the notifier owes).
REMINDER_EVENTS = {"InterviewScheduled", "InterviewRescheduled", "InterviewCancelled", "InterviewHeld",
                   "LyceeAvisGiven", "CollegeAvisGiven", "StudentWithdrawn", "StudentReinstated", "StudentForgotten"}
CONVOCATION_EVENTS = {"InterviewScheduled", "InterviewRescheduled", "InterviewCancelled"}
MAX_DELIVERIES = 5  # an entry that fails this many times (counted in the ledger) is acknowledged, its error kept


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def utc_now() -> datetime:
    return datetime.now(UTC)


def smtp_sender(settings: NotifierSettings) -> Sender:
    """Sends through one SMTP connection kept open (the notifier sends one message at a time)."""
    connection = SmtpConnection(parse_smtp_url(settings.smtp_url, settings.smtp_ca_file),
                                settings.smtp_timeout_seconds)

    async def send(mail: Mail) -> None:
        await asyncio.to_thread(connection.send, mail.message(settings.mail_from))

    return send


class Notifier:
    def __init__(self, settings: NotifierSettings, *, redis: Redis, engine: Engine, event_log: EventLog,
                 reference: ReferenceData, clock: Clock = utc_now, sender: Sender | None = None) -> None:
        """`sender` None: no SMTP, every e-mail is kept in the outbox table (the /outbox page)."""
        self.settings = settings
        self.redis = redis
        self.engine = engine
        self.log = event_log
        self.keys = StreamKeys(settings.academie)
        self.reference = reference
        self.clock = clock
        self.sender = sender
        self.group = settings.consumer_group
        self.consumer = settings.consumer_name
        configured = settings.configured_campaign()
        self.campaigns: list[str] = [configured] if configured else []  # then as the rectorat stream says
        self._rectorat_seen: tuple[int, float] = (-1, 0.0)  # its length and when it was last read
        self._sending = asyncio.Lock()  # one send at a time: a key is checked and recorded under it
        self._reminding = asyncio.Lock()  # one reminders check at a time (then _sending, never the reverse)
        self._slot_places: dict[tuple[str, str], str] = {}  # (campaign, slot_id): its place, which never changes

    @property
    def streams(self) -> list[str]:
        return [stream for campaign in self.campaigns for stream in self.keys.campaign_streams(campaign)]

    async def follow_campaigns(self) -> bool:
        """The campaigns the rectorat stream opened (and PASSPRO_CAMPAIGN) become the ones read, each new
        one's groups made at `0` (its entries written before are read too); True when they changed. The
        stream is read again when it grew, or every campaigns_check_seconds (a campaign's time runs out)."""
        length = await self.redis.xlen(self.keys.rectorat)
        loop = asyncio.get_running_loop()
        seen_length, seen_at = self._rectorat_seen
        if length == seen_length and loop.time() - seen_at < self.settings.campaigns_check_seconds:
            return False
        self._rectorat_seen = (length, loop.time())
        followed = followed_campaigns(await self.log.read_rectorat(), self.clock(),
                                      timedelta(days=self.settings.purge_delay_days),
                                      self.settings.configured_campaign())
        if followed == self.campaigns:
            return False
        log.info("notifier: campaigns %s (were %s)", followed, self.campaigns)
        self.campaigns = followed
        await self.create_groups()
        return True

    # -- the group ------------------------------------------------------------------------------------------

    async def create_groups(self) -> None:
        """The group at the start of each stream (`0`, MKSTREAM): it sees the whole campaign, whenever made."""
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        replicas = min_replicas(self.settings)
        if replicas:  # on the replicas before it is relied on: a failover must not lose the groups
            await self.redis.execute_command("WAIT", replicas, self.settings.redis_replica_timeout_ms)

    async def drain_own_pending(self) -> int:
        """Entries this consumer read and never acknowledged (it crashed): handled again, first."""
        done = 0
        for stream in self.streams:
            while True:
                reply = await self.redis.xreadgroup(self.group, self.consumer, {stream: "0"}, count=100)
                entries = reply[0][1] if reply else []
                if not entries:
                    break
                for entry_id, fields in entries:
                    await self.handle(stream, _text(entry_id), fields or {}, redelivered=True)
                    done += 1
        return done

    async def read_new(self, count: int = 100) -> int:
        """One non-blocking read of new entries for this consumer, handled (what a FastStream subscriber does;
        the tests drive the notifier step by step with it)."""
        done = 0
        for stream in self.streams:
            reply = await self.redis.xreadgroup(self.group, self.consumer, {stream: ">"}, count=count)
            for entry_id, fields in (reply[0][1] if reply else []):
                await self.handle(stream, _text(entry_id), fields or {})
                done += 1
        return done

    async def claim_stale(self, min_idle_seconds: float | None = None) -> int:
        """Entries pending on any consumer for longer than the idle time (it died, or it failed): claimed
        (XAUTOCLAIM) and handled here."""
        idle = int(1000 * (self.settings.claim_idle_seconds if min_idle_seconds is None else min_idle_seconds))
        done = 0
        for stream in self.streams:
            start = "0-0"
            while True:
                reply = await self.redis.xautoclaim(stream, self.group, self.consumer, idle, start, count=100)
                start, entries = _text(reply[0]), reply[1]
                for entry_id, fields in entries:
                    await self.handle(stream, _text(entry_id), fields or {}, redelivered=True)
                    done += 1
                if start == "0-0":
                    break
        return done

    async def handle(self, stream: str, entry_id: str, fields: dict, redelivered: bool = False) -> None:
        """One entry: its notifications sent and recorded, then the ack; a failure leaves it pending (claimed
        again later) until MAX_DELIVERIES, then it is acknowledged with its error kept for `passpro status`.
        The failures are counted in the ledger: a restart or another notifier claiming the entry goes on from
        the count. `redelivered`: read again (pending, claimed), so it may have a count to clear once done."""
        try:
            await self.process(stream, entry_id, {_text(k): _text(v) for k, v in fields.items()})
        except Exception as exc:  # noqa: BLE001 - any failure: the entry stays pending, the error is shown
            count = await asyncio.to_thread(self._count_failure, stream, entry_id)
            log.exception("notifier: entry %s of %s failed (%d)", entry_id, stream, count)
            error = f"{stream} {entry_id}: {type(exc).__name__}: {exc}"
            await asyncio.to_thread(self._error, None, error)
            if count < MAX_DELIVERIES:
                return
            # Given up: kept for operators (passpro notifier failed / retry), then acknowledged.
            await asyncio.to_thread(self._failed, stream, entry_id, count, f"{type(exc).__name__}: {exc}")
        else:
            if redelivered:  # a new entry never failed: no write on the common path
                await asyncio.to_thread(self._forget_failures, stream, entry_id)
        await self.redis.xack(stream, self.group, entry_id)

    async def retry_failed(self) -> int:
        """The given-up entries an operator asked to retry (`passpro notifier retry`): read again from their
        stream and handled once; done, they leave the list; failing again, they stay with the new error."""
        done = 0
        for stream, entry_id in await asyncio.to_thread(self._retry_requests):
            found = await self.redis.xrange(stream, entry_id, entry_id)
            try:
                if found:
                    fields = {_text(k): _text(v) for k, v in (found[0][1] or {}).items()}
                    await self.process(stream, entry_id, fields)
            except Exception as exc:  # noqa: BLE001 - kept in the list with its new error
                log.exception("notifier: retried entry %s of %s failed", entry_id, stream)
                await asyncio.to_thread(self._failed, stream, entry_id, MAX_DELIVERIES + 1,
                                        f"{type(exc).__name__}: {exc}")
                continue
            await asyncio.to_thread(self._forget_failed, stream, entry_id)
            done += 1
        return done

    async def process(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        event_type, ine = fields.get("event_type"), fields.get("student_ine")
        if not ine or event_type not in REMINDER_EVENTS | CONVOCATION_EVENTS:
            return
        campaign = fields.get("campaign") or self.settings.campaign
        version = int(fields.get("student_version") or 0)
        if event_type == "StudentForgotten":
            await asyncio.to_thread(self._forget, campaign, ine)
            return
        history = await self.log.read_student(campaign, ine)
        if event_type in CONVOCATION_EVENTS:
            this = next((e for e in history if e.student_version == version), None)
            if this is not None:
                upto = [(e.event, e.student_version) for e in history if e.student_version <= version]
                before = fold(campaign, ine, upto[:-1])
                after = fold(campaign, ine, upto)
                for note in convocations(this.event, before, after):
                    await self.deliver(await self._with_slot_place(note), stream, entry_id)
        await self.check_reminders(campaign, ine)

    async def _with_slot_place(self, note: Notification) -> Notification:
        """A convocation for an interview booked on a slot gets the slot's place (SPEC §7), read once from the
        slot's own stream (its InterviewSlotOpened comes before every booking, which is conditioned on it)."""
        slot_id = note.interview.slot_id if note.interview is not None else None
        if not slot_id or note.kind == "convocation_cancelled":
            return note
        key = (note.campaign, slot_id)
        if key not in self._slot_places:
            for logged in await self.log.read_stream(self.keys.slot(note.campaign, slot_id)):
                if isinstance(logged.event.payload, InterviewSlotOpened):
                    self._slot_places[key] = logged.event.payload.place
        return dataclasses.replace(note, slot_place=self._slot_places.get(key))

    async def check_reminders(self, campaign: str, ine: str) -> None:
        """The student's reminders due now sent, and their next moment stored. One check at a time, each reading
        the history afresh: a timer's check read before an event can never overwrite the moment that event set."""
        async with self._reminding:
            history = await self.log.read_student(campaign, ine)
            await self._check_reminders(campaign, ine, history)

    async def _check_reminders(self, campaign: str, ine: str, history) -> None:
        file = fold(campaign, ine, [(e.event, e.student_version) for e in history])
        due, next_at = reminders(file, self.clock())
        for note in due:
            await self.deliver(note, self.keys.student(campaign, ine), str(file.version))
        await asyncio.to_thread(self._set_due, campaign, ine, next_at)

    # -- sending --------------------------------------------------------------------------------------------

    def recipient(self, note: Notification) -> str:
        return note.referent_email or self.settings.mailbox(note.establishment_uai or "")

    async def deliver(self, note: Notification, stream: str, position: str) -> None:
        async with self._sending:
            await self._deliver(note, stream, position)

    async def _deliver(self, note: Notification, stream: str, position: str) -> None:
        if await asyncio.to_thread(self._known, note.key):
            return  # sent already (a redelivered entry), or waiting in the retry queue
        mail = render(note, self.reference, recipient=self.recipient(note),
                      registration_url=self.settings.registration_url)
        now = self.clock()
        if self.sender is None:
            await asyncio.to_thread(self._keep, mail, stream, position, now)
            return
        try:
            await self.sender(mail)
        except SmtpError as exc:
            await asyncio.to_thread(self._queue, mail, stream, position, 1, now, str(exc))
            return
        await asyncio.to_thread(self._sent, mail, stream, position, now)

    async def retry_due(self) -> int:
        """Queued e-mails whose next attempt has come: sent again, with backoff on a new failure."""
        if self.sender is None:
            return 0
        now = self.clock()
        async with self._sending:
            return await self._retry(now)

    async def _retry(self, now: datetime) -> int:
        rows = await asyncio.to_thread(self._retries, now)
        sent = 0
        for row in rows:
            message = email.message_from_string(row.message, policy=email.policy.default)
            mail = Mail(row.key, row.kind, row.recipient, str(message["Subject"]),
                        message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())
            try:
                await self.sender(mail)
            except SmtpError as exc:
                await asyncio.to_thread(self._queue, mail, row.stream, row.position, row.attempts + 1, now, str(exc))
                continue
            await asyncio.to_thread(self._sent, mail, row.stream, row.position, self.clock())
            sent += 1
        return sent

    async def tick(self) -> None:
        """The timer's work: the reminders that came due, then the retries."""
        for campaign, ine in await asyncio.to_thread(self._due, self.clock()):
            await self.check_reminders(campaign, ine)
        await self.retry_due()
        await self.retry_failed()

    # -- the database (in worker threads) -------------------------------------------------------------------

    def _known(self, key: str) -> bool:
        with self.engine.connect() as conn:
            queued = conn.execute(ledger.sa.select(ledger.mail_queue.c.key)
                                  .where(ledger.mail_queue.c.key == key)).first()
            return queued is not None or ledger.was_sent(conn, key)

    def _sent(self, mail: Mail, stream: str, position: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            ledger.record_sent(conn, key=mail.key, kind=mail.kind, recipient=mail.recipient, stream=stream,
                               position=position, sent_at=at)

    def _keep(self, mail: Mail, stream: str, position: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            if ledger.was_sent(conn, mail.key):
                return
            ledger.keep_in_outbox(conn, key=mail.key, recipient=mail.recipient, subject=mail.subject,
                                  text=mail.text, html=mail.html, at=at)
            ledger.record_sent(conn, key=mail.key, kind=mail.kind, recipient=mail.recipient, stream=stream,
                               position=position, sent_at=at)

    def _queue(self, mail: Mail, stream: str, position: str, attempts: int, now: datetime, error: str) -> None:
        delay = min(self.settings.retry_base_seconds * 2 ** (attempts - 1), self.settings.retry_max_seconds)
        message = mail.message(self.settings.mail_from).as_string()
        with self.engine.begin() as conn:
            ledger.queue_retry(conn, key=mail.key, kind=mail.kind, recipient=mail.recipient, stream=stream,
                               position=position, message=message, attempts=attempts,
                               next_attempt_at=now + timedelta(seconds=delay), error=error)
            ledger.record_error(conn, now, mail.key, f"SMTP (tentative {attempts}) : {error}")

    def _error(self, key: str | None, error: str) -> None:
        with self.engine.begin() as conn:
            ledger.record_error(conn, self.clock(), key, error)

    def _failed(self, stream: str, entry_id: str, attempts: int, error: str) -> None:
        with self.engine.begin() as conn:
            ledger.record_failed(conn, stream, entry_id, attempts, error, self.clock())

    def _count_failure(self, stream: str, entry_id: str) -> int:
        with self.engine.begin() as conn:
            return ledger.count_entry_failure(conn, stream, entry_id)

    def _forget_failures(self, stream: str, entry_id: str) -> None:
        with self.engine.begin() as conn:
            ledger.forget_entry_failures(conn, stream, entry_id)

    def _retry_requests(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return ledger.retries_requested(conn)

    def _forget_failed(self, stream: str, entry_id: str) -> None:
        with self.engine.begin() as conn:
            ledger.forget_failed(conn, stream, entry_id)

    def _forget(self, campaign: str, ine: str) -> None:
        with self.engine.begin() as conn:
            ledger.forget_student(conn, campaign, ine)

    def _set_due(self, campaign: str, ine: str, at: datetime | None) -> None:
        with self.engine.begin() as conn:
            ledger.set_due(conn, campaign, ine, at)

    def _due(self, now: datetime) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return ledger.due_students(conn, now)

    def _retries(self, now: datetime):
        with self.engine.connect() as conn:
            return ledger.retries_due(conn, now)

    # -- running --------------------------------------------------------------------------------------------

    def broker(self):
        """FastStream's broker with one group subscriber per service stream, manual acks (after the record)."""
        from faststream import AckPolicy
        from faststream.redis import RedisBroker, StreamSub

        broker = self._make_broker(RedisBroker)
        for stream in self.streams:
            sub = broker.subscriber(
                stream=StreamSub(stream, group=self.group, consumer=self.consumer,
                                 polling_interval=self.settings.block_ms, max_records=100),
                ack_policy=AckPolicy.MANUAL,
            )
            sub(self._on_entry(stream))
        return broker

    def _make_broker(self, plain):
        """A plain broker on PASSPRO_REDIS_URL, or with PASSPRO_REDIS_SENTINELS FastStream's RedisSentinelBroker
        (Sentinel.master_for, as shared/runtime/redis_connect.py) with its FollowingConnection: each new or
        broken connection asks the Sentinels for the primary and refuses a node that is not one; the
        subscribers' reads that fail meanwhile are tried again by FastStream after a pause."""
        if getattr(self.settings, "redis_cluster_nodes", ""):
            return self._cluster_broker()
        if not self.settings.redis_sentinels:
            return plain(self.settings.redis_url, logger=log)
        from faststream.redis import RedisSentinelBroker

        from shared.runtime.redis_connect import SENTINEL_TIMEOUT_S, FollowingConnection, parse_sentinels

        return RedisSentinelBroker(
            self.settings.redis_url, logger=log, sentinels=parse_sentinels(self.settings.redis_sentinels),
            sentinel_master_name=self.settings.redis_sentinel_service, connection_class=FollowingConnection,
            socket_connect_timeout=5,
            sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S})

    def _cluster_broker(self):
        """With PASSPRO_REDIS_CLUSTER_NODES, FastStream's RedisClusterBroker (redis-py's RedisCluster): each
        stream's reads go to the shard its académie's hash tag names; redis_url gives only the credentials."""
        from urllib.parse import quote, urlsplit

        from faststream.redis import RedisClusterBroker

        from shared.runtime.redis_connect import parse_cluster_nodes

        (host, port), *others = parse_cluster_nodes(self.settings.redis_cluster_nodes)
        url = urlsplit(self.settings.redis_url or "redis://")
        auth = f"{quote(url.username or '')}:{quote(url.password)}@" if url.password else ""
        return RedisClusterBroker(
            f"redis://{auth}{host}:{port}", logger=log, startup_nodes=others, socket_connect_timeout=5)

    def _on_entry(self, stream: str):
        async def on_entry(msg: RedisStreamMessage) -> None:
            raw = msg.raw_message
            if not raw.get("message_ids"):  # FastStream's in-memory TestRedisBroker: no entry id, a packed body
                await self.handle(stream, "0-0", await msg.decode())
                return
            for entry_id in raw["message_ids"]:
                await self.handle(stream, _text(entry_id), raw["data"])

        return on_entry

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: the campaigns followed, groups made, own pending drained, then the broker's subscribers
        and the timer; a campaign the rectorat opens meanwhile is followed without a restart (its groups made
        at `0`, the broker started again with its streams)."""
        await self.follow_campaigns()
        await self.create_groups()
        await self.drain_own_pending()
        broker = self.broker()
        await broker.start()
        try:
            while not stop.is_set():
                try:
                    if await self.follow_campaigns():
                        await broker.stop()
                        broker = self.broker()
                        await broker.start()
                    await self.claim_stale()
                    await self.tick()
                except Exception as exc:  # noqa: BLE001 - the timer goes on; the error is shown by status
                    log.exception("notifier: timer")
                    if "NOGROUP" in str(exc):  # a failover lost a group made just before: made again at 0
                        with contextlib.suppress(Exception):  # (the ledger keeps a re-read from sending twice)
                            await self.create_groups()
                    await asyncio.to_thread(self._error, None, f"minuterie : {type(exc).__name__}: {exc}")
                try:
                    await asyncio.wait_for(stop.wait(), self.settings.timer_seconds)
                except TimeoutError:
                    pass
        finally:
            await broker.stop()


async def status(settings: NotifierSettings, redis: Redis, engine: Engine) -> dict:
    """The group's lag and pending entries per stream (XINFO GROUPS), what was sent, what waits, the last
    errors: for `passpro status` and the notifier's /status."""
    keys = StreamKeys(settings.academie)
    followed = followed_campaigns(await EventLog(redis, keys).read_rectorat(), utc_now(),
                                  timedelta(days=settings.purge_delay_days), settings.configured_campaign())
    streams = []
    for stream in [s for campaign in followed for s in keys.campaign_streams(campaign)]:
        try:
            groups = await redis.xinfo_groups(stream)
        except ResponseError:
            groups = []
        info = next((g for g in groups if _text(g["name"]) == settings.consumer_group), None)
        streams.append({"stream": keys.stream_name(stream),
                        "lag": None if info is None else info.get("lag"),
                        "pending": None if info is None else info.get("pending")})

    def read():
        with engine.connect() as conn:
            return ledger.counts(conn), [
                {"at": r.at, "error": r.error} for r in ledger.last_errors(conn)]  # no key: it names a student

    def read_failed():
        with engine.connect() as conn:  # a stream and an entry id: no student named
            return [{"stream": keys.stream_name(r.stream), "entry_id": r.entry_id, "attempts": r.attempts,
                     "error": r.error, "failed_at": r.failed_at, "retry": bool(r.retry)}
                    for r in ledger.failed(conn, limit=20)]

    counts, errors = await asyncio.to_thread(read)
    return {"streams": streams, **counts, "errors": errors, "failed": await asyncio.to_thread(read_failed)}
