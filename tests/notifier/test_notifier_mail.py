"""The notifier against a real Redis and a real SMTP server (aiosmtpd): each kind of e-mail received by the
right person, in French, plain text and HTML, with the lycée's address, access and journey link; the group made
after the events still sees them; the reminders driven by an injected clock; a failing SMTP server retried with
backoff while the log goes on; no SMTP: the outbox."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from notifier_world import Clock, SmtpServer, Student, html_of, settings_for, subject_of, text_of, wait_async

from services.notifier import ledger
from services.notifier.process import opened
from shared.contracts.events import InterviewRescheduled
from tests.shared.event_factories import (
    FORMATION, INTERVIEW_ID, LYCEE, T0, college_avis, cancelled, held, ine_number, lycee_avis, registered, scheduled,
)

REFERENT_MAIL = "claire.dupont@ac-paris.fr"
AT = T0 + timedelta(days=10)  # the interview's time


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def world(academie, redis_url, tmp_path):
    def make(smtp_url: str = "", **more):
        return settings_for(academie, redis_url, tmp_path / "notifier", smtp_url, **more)
    return make


def rows(notifier, table):
    with notifier.engine.connect() as conn:
        return list(conn.execute(sa.select(table)))


async def test_convocations_booked_moved_cancelled(log, smtp, world):
    """Written before the notifier ever ran: its group starts at the streams' beginning and sees them all."""
    student = Student(log, ine_number(1))
    await student.add(registered())
    await student.add(scheduled(at=AT))
    await student.add(InterviewRescheduled(interview_id=INTERVIEW_ID, lycee_uai=LYCEE, formation_code=FORMATION,
                                           scheduled_at=AT + timedelta(days=1, hours=5), mode="presentiel"))
    await student.add(cancelled())
    async with opened(world(smtp.url, block_ms=50, timer_seconds=0.05), clock=Clock(T0)) as notifier:
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run(stop))  # FastStream's group subscribers
        try:
            await wait_async(lambda: len(smtp.inbox.messages) >= 3, what="three convocations")
        finally:
            stop.set()
            await task
        booked, moved, gone = smtp.inbox.messages
        for message in (booked, moved, gone):
            assert message["To"] == REFERENT_MAIL and message["X-Envelope-To"] == REFERENT_MAIL
            assert message.get_body(("html",)) is not None
            text = text_of(message)
            assert "Bonjour Claire Dupont," in text
            assert "Lycée" in text and "75" in text  # the lycée's name and address
            assert "Accès : " in text and "openstreetmap.org/directions" in text
            assert "Léa Martin (3e B)" in text
        assert subject_of(booked) == f"Convocation à l'entretien de Léa Martin le 12 mars {YEAR} à 10 h 00"
        assert f"/eleves/{student.ine}/entretiens/{INTERVIEW_ID}/convocation" in text_of(booked)
        assert '<a href="https://www.openstreetmap.org/directions' in html_of(booked)
        assert "déplacé" in subject_of(moved) and f"prévu le 12 mars {YEAR} à 10 h 00, est déplacé au 13 mars {YEAR} à " \
            "15 h 00" in text_of(moved)
        assert subject_of(gone) == "Entretien de Léa Martin annulé" and "motif : entretien reporté" in text_of(gone)
        sent = rows(notifier, ledger.sent_ledger)
        assert sorted(r.kind for r in sent) == ["convocation", "convocation_cancelled", "convocation_moved"]
        assert all(r.stream.endswith(f":{YEAR}:registration") and r.position for r in sent)
        for stream in notifier.streams:  # everything acknowledged
            assert (await notifier.redis.xpending(stream, notifier.group))["pending"] == 0


async def test_reminders_follow_the_injected_clock(log, smtp, world, academie):
    clock = Clock(T0)
    first = Student(log, ine_number(2))  # no collège avis: the principal is reminded 3 days before
    await first.add(registered())
    await first.add(scheduled(at=AT))
    second = Student(log, ine_number(3))  # avis given in time: no reminder
    await second.add(registered())
    await second.add(scheduled(at=AT))
    async with opened(world(smtp.url), clock=clock) as notifier:
        await notifier.create_groups()
        assert await notifier.read_new() == 4
        assert len(smtp.inbox.messages) == 2  # the two convocations
        assert {r.ine: r.due_at for r in rows(notifier, ledger.due_reminders)} == {
            first.ine: ledger.iso(AT - timedelta(days=3)), second.ine: ledger.iso(AT - timedelta(days=3))}
        clock.now = AT - timedelta(days=3, minutes=1)
        await notifier.tick()
        assert len(smtp.inbox.messages) == 2  # not yet
        await second.add(college_avis())
        await notifier.read_new()
        clock.now = AT - timedelta(days=3)
        await notifier.tick()
        await notifier.tick()  # once only
        assert len(smtp.inbox.messages) == 3
        reminder = smtp.inbox.messages[2]
        assert reminder["To"] == f"ce.0752536z@ac-{academie}.fr"
        assert subject_of(reminder) == "Rappel : avis du collège manquant pour Léa Martin"
        assert f"Le premier entretien de Léa Martin (3e B) a lieu le 12 mars {YEAR} à 10 h 00" in text_of(reminder)
        assert f"/eleves/{first.ine}" in text_of(reminder)

        # Held; the proviseur is reminded 5 days later if the lycée avis is still missing.
        held_at = AT + timedelta(minutes=40)
        await first.add(college_avis())
        await first.add(held(at=held_at))
        await second.add(held(at=held_at))
        clock.now = held_at + timedelta(hours=1)
        await notifier.read_new()
        assert len(smtp.inbox.messages) == 3
        await second.add(lycee_avis())
        await notifier.read_new()
        clock.now = held_at + timedelta(days=5)
        await notifier.tick()
        assert len(smtp.inbox.messages) == 4
        late = smtp.inbox.messages[3]
        assert late["To"] == f"ce.{LYCEE.lower()}@ac-{academie}.fr"
        assert subject_of(late) == "Rappel : avis du lycée manquant pour Léa Martin"
        assert f"s'est tenu le 12 mars {YEAR} à 10 h 40" in text_of(late)
        assert rows(notifier, ledger.due_reminders) == []  # nothing more to wait for
        clock.now += timedelta(days=30)
        await notifier.tick()
        assert len(smtp.inbox.messages) == 4


async def test_failing_smtp_is_retried_with_backoff_and_never_holds_the_log(log, smtp, world):
    clock = Clock(T0)
    smtp.inbox.refuse = 1
    student = Student(log, ine_number(4))
    await student.add(registered())
    await student.add(scheduled(at=AT))
    async with opened(world(smtp.url, retry_base_seconds=10), clock=clock) as notifier:
        await notifier.create_groups()
        await notifier.read_new()
        assert smtp.inbox.messages == [] and smtp.inbox.refused == 1
        for stream in notifier.streams:  # the entry is acknowledged: the log goes on
            assert (await notifier.redis.xpending(stream, notifier.group))["pending"] == 0
        [queued] = rows(notifier, ledger.mail_queue)
        assert queued.attempts == 1 and queued.next_attempt_at == ledger.iso(T0 + timedelta(seconds=10))
        assert "451" in queued.last_error
        other = Student(log, ine_number(5))  # another e-mail while the first one waits
        await other.add(registered())
        await other.add(scheduled(at=AT))
        await notifier.read_new()
        assert len(smtp.inbox.messages) == 1 and smtp.inbox.messages[0]["To"] == REFERENT_MAIL
        await notifier.tick()  # too early for the retry
        assert smtp.inbox.refused == 1 and len(rows(notifier, ledger.mail_queue)) == 1
        smtp.inbox.refuse = 1
        clock.now = T0 + timedelta(seconds=10)
        await notifier.tick()  # refused again: the delay doubles
        [queued] = rows(notifier, ledger.mail_queue)
        assert smtp.inbox.refused == 2
        assert queued.attempts == 2 and queued.next_attempt_at == ledger.iso(clock.now + timedelta(seconds=20))
        clock.now += timedelta(seconds=20)
        await notifier.tick()
        assert len(smtp.inbox.messages) == 2 and rows(notifier, ledger.mail_queue) == []
        assert len(rows(notifier, ledger.sent_ledger)) == 2
        errors = rows(notifier, ledger.notifier_errors)
        assert [e.error.split(" :")[0] for e in errors] == ["SMTP (tentative 1)", "SMTP (tentative 2)"]


async def test_without_smtp_the_mails_wait_in_the_outbox(log, world):
    student = Student(log, ine_number(6))
    await student.add(registered())
    await student.add(scheduled(at=AT))
    async with opened(world(""), clock=Clock(T0)) as notifier:
        await notifier.create_groups()
        await notifier.read_new()
        await notifier.drain_own_pending()
        [kept] = rows(notifier, ledger.outbox)
        assert kept.recipient == REFERENT_MAIL and kept.subject.startswith("Convocation")
        assert len(rows(notifier, ledger.sent_ledger)) == 1


async def test_the_referent_address_sealed_in_the_log_is_opened_with_the_key_store(redis, keys, smtp, world):
    """As the services write it: the référent's name and address encrypted with the student's key; the notifier
    opens them with the key store it shares with the services (the same master key and store)."""
    from shared.runtime.log.client import EventLog

    settings = world(smtp.url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keystore = settings.open_keystore()
    try:
        sealed_log = EventLog(redis, keys, keystore)
        student = Student(sealed_log, ine_number(7))
        await student.add(registered())
        await student.add(scheduled(at=AT))
    finally:
        keystore.close()
    raw = (await redis.xrange(keys.student(CAMPAIGN, student.ine)))[0][1]
    assert REFERENT_MAIL.encode() not in b"".join(raw.values())  # sealed in the log
    async with opened(settings, clock=Clock(T0)) as notifier:
        await notifier.create_groups()
        await notifier.read_new()
    [message] = smtp.inbox.messages
    assert message["To"] == REFERENT_MAIL and "Bonjour Claire Dupont," in text_of(message)
