"""Recovery and storage: entries left pending by a consumer that died are claimed (XAUTOCLAIM) by another and
sent once; a redelivered entry already in the ledger sends nothing; the ledger on PostgreSQL through the
notifier's migrations; an SMTP server that asks for a login."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from notifier_world import Clock, Inbox, SmtpServer, Student, free_port, settings_for, text_of

from services.notifier import ledger, purge
from services.notifier.process import opened
from tests.shared.event_factories import T0, ine_number, registered, scheduled

AT = T0 + timedelta(days=10)


def bytes_of(value) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


async def test_entries_of_a_dead_consumer_are_claimed_and_sent_once(log, smtp, academie, redis_url, tmp_path):
    student = Student(log, ine_number(20))
    await student.add(registered())
    await student.add(scheduled(at=AT))
    settings = settings_for(academie, redis_url, tmp_path / "n", smtp.url)
    async with opened(settings, clock=Clock(T0)) as notifier:
        await notifier.create_groups()
        # A consumer read both entries and died before handling them: they stay pending on it.
        stream = notifier.streams[0]
        read = await notifier.redis.xreadgroup(notifier.group, "notifier-dead", {stream: ">"}, count=10)
        assert len(read[0][1]) == 2
        assert await notifier.read_new() == 0  # nothing new for the others
        assert await notifier.claim_stale(min_idle_seconds=60) == 0  # not idle long enough yet
        assert await notifier.claim_stale(min_idle_seconds=0) == 2
        assert len(smtp.inbox.messages) == 1
        assert (await notifier.redis.xpending(stream, notifier.group))["pending"] == 0
        # The same entry delivered again (a crash after the record, before the ack): the ledger holds it.
        entry_id, fields = (await notifier.redis.xrange(stream))[-1]
        await notifier.handle(stream, entry_id.decode(), fields)
        assert len(smtp.inbox.messages) == 1


async def test_the_ledger_on_postgresql(log, smtp, academie, redis_url, postgres_url, pg_schema, tmp_path):
    student = Student(log, ine_number(21))
    await student.add(registered())
    await student.add(scheduled(at=AT))
    settings = settings_for(academie, redis_url, tmp_path / "n", smtp.url, database_url=postgres_url,
                            database_schema=pg_schema)
    async with opened(settings, clock=Clock(T0)) as notifier:
        await notifier.create_groups()
        await notifier.read_new()
        with notifier.engine.connect() as conn:
            [row] = conn.execute(sa.select(ledger.sent_ledger)).all()
            [due] = conn.execute(sa.select(ledger.due_reminders)).all()
        assert row.kind == "convocation" and row.stream.endswith(f":{YEAR}:registration")
        assert due.ine == student.ine
    assert len(smtp.inbox.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_an_smtp_server_asking_for_a_login(log, academie, redis_url, tmp_path):
    seen = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=(bytes_of(auth_data.login), bytes_of(auth_data.password)) == (b"passpro", b"s3cret"))

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        student = Student(log, ine_number(22))
        await student.add(registered())
        await student.add(scheduled(at=AT))
        wrong = settings_for(academie, redis_url, tmp_path / "w", f"smtp://passpro:faux@127.0.0.1:{port}",
                             smtp_timeout_seconds=2)
        async with opened(wrong, clock=Clock(T0)) as notifier:
            await notifier.create_groups()
            await notifier.read_new()
            with notifier.engine.connect() as conn:
                [queued] = conn.execute(sa.select(ledger.mail_queue)).all()
            # refused (smtplib then tries AUTH LOGIN, which this server leaves unanswered: a timeout)
            assert queued.last_error.startswith("SMTP") and queued.attempts == 1 and inbox.messages == []
            assert tuple(map(bytes_of, seen[0])) == (b"passpro", b"faux")
        right = settings_for(academie, redis_url, tmp_path / "r", f"smtp://passpro:s3cret@127.0.0.1:{port}",
                             consumer_group="notifier-2")
        async with opened(right, clock=Clock(T0)) as notifier:
            await notifier.create_groups()
            await notifier.read_new()
        [message] = inbox.messages
        assert "Convocation" in str(message["Subject"]) and "Léa Martin" in text_of(message)
        assert tuple(map(bytes_of, seen[-1])) == (b"passpro", b"s3cret")
    finally:
        controller.stop()


async def test_a_forgotten_student_leaves_no_mail_text_behind(log, academie, redis_url, tmp_path):
    from shared.contracts.events import StudentForgotten

    student = Student(log, ine_number(23))
    await student.add(registered())
    await student.add(scheduled(at=AT))
    other = Student(log, ine_number(24))
    await other.add(registered())
    await other.add(scheduled(at=AT))
    async with opened(settings_for(academie, redis_url, tmp_path / "n", ""), clock=Clock(T0)) as notifier:
        await notifier.create_groups()
        await notifier.read_new()
        await student.add(StudentForgotten(reason="demande de la famille"))
        await notifier.read_new()
        with notifier.engine.connect() as conn:
            kept = conn.execute(sa.select(ledger.outbox.c.key)).scalars().all()
            due = conn.execute(sa.select(ledger.due_reminders.c.ine)).scalars().all()
            sent = conn.execute(sa.select(ledger.sent_ledger.c.key)).scalars().all()
        assert [k.split(":")[2] for k in kept] == [other.ine] and due == [other.ine]
        assert len(sent) == 2  # keys only: a redelivered entry still sends nothing
        with notifier.engine.begin() as conn:
            purge.purge_campaign(conn, CAMPAIGN, f"{notifier.keys.prefix}:{YEAR}:")
        assert all(not rows for rows in (
            conn_rows(notifier, t) for t in (ledger.outbox, ledger.sent_ledger, ledger.due_reminders)))


def conn_rows(notifier, table):
    with notifier.engine.connect() as conn:
        return conn.execute(sa.select(table)).all()
