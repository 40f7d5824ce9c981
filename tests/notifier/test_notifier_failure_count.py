"""The failures of an entry are counted in the notifier's ledger, not in its process: a restart, or another
notifier claiming the entry, goes on from the count, and the entry is given up at the MAX_DELIVERIES-th
failure in all. Beside it, with a real SMTP server refusing, the e-mail's own attempts go on from theirs."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from notifier_world import Clock, SmtpServer, Student, settings_for

from services.notifier import ledger
from services.notifier.process import opened
from services.notifier.worker import MAX_DELIVERIES
from tests.shared.event_factories import T0, ine_number, registered, scheduled

AT = T0 + timedelta(days=10)


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def rows(notifier, table) -> list:
    with notifier.engine.connect() as conn:
        return list(conn.execute(sa.select(table)))


def broken_for(notifier, ine: str) -> None:
    """The student's history unreadable for this notifier: each handling of their entry fails."""
    read_student = notifier.log.read_student

    async def broken(campaign, student_ine):
        if student_ine == ine:
            raise RuntimeError("clé de l'élève illisible")
        return await read_student(campaign, student_ine)

    notifier.log.read_student = broken


async def pending(notifier) -> int:
    return sum([(await notifier.redis.xpending(s, notifier.group))["pending"] for s in notifier.streams])


async def test_the_failures_count_holds_across_a_restart_and_another_notifier(log, academie, redis_url, tmp_path,
                                                                               smtp):
    smtp.inbox.refuse = 100  # the SMTP server refuses every message (451) for the whole test
    good, bad = Student(log, ine_number(80)), Student(log, ine_number(81))
    for student in (good, bad):
        await student.add(registered())
        await student.add(scheduled(at=AT))
    clock = Clock(T0)
    data_dir = tmp_path / "notifier"
    first = settings_for(academie, redis_url, data_dir, smtp.url, retry_base_seconds=10)
    async with opened(first, clock=clock) as notifier:
        broken_for(notifier, bad.ine)
        await notifier.create_groups()
        await notifier.read_new()  # bad's booking fails (1); good's convocation refused by SMTP, queued
        for _ in range(2):
            await notifier.claim_stale(0)  # 2, 3
        assert await pending(notifier) == 1 and rows(notifier, ledger.failed_entries) == []
        [count] = rows(notifier, ledger.entry_failures)
        assert count.failures == 3
        [queued] = rows(notifier, ledger.mail_queue)
        assert queued.attempts == 1 and smtp.inbox.refused == 1

    # The notifier restarts as another consumer (a second process, or the same one started again elsewhere).
    clock.now = T0 + timedelta(seconds=10)
    second = first.model_copy(update={"consumer_name": "notifier-2"})
    async with opened(second, clock=clock) as notifier:
        broken_for(notifier, bad.ine)
        await notifier.claim_stale(0)  # 4
        assert await pending(notifier) == 1 and rows(notifier, ledger.failed_entries) == []
        await notifier.claim_stale(0)  # 5: given up, acknowledged, kept for operators
        assert await pending(notifier) == 0
        [failed] = rows(notifier, ledger.failed_entries)
        assert failed.attempts == MAX_DELIVERIES and "clé de l'élève illisible" in failed.error
        assert rows(notifier, ledger.entry_failures) == []
        await notifier.tick()  # the e-mail's retry has come: refused again, its attempts go on from 1
        [queued] = rows(notifier, ledger.mail_queue)
        assert queued.attempts == 2 and smtp.inbox.refused == 2 and smtp.inbox.messages == []


async def test_an_entry_handled_after_failures_leaves_no_count(log, academie, redis_url, tmp_path, smtp):
    student = Student(log, ine_number(82))
    await student.add(registered())
    await student.add(scheduled(at=AT))
    settings = settings_for(academie, redis_url, tmp_path / "notifier", smtp.url)
    async with opened(settings, clock=Clock(T0)) as notifier:
        read_student = notifier.log.read_student
        broken_for(notifier, student.ine)
        await notifier.create_groups()
        await notifier.read_new()
        assert [r.failures for r in rows(notifier, ledger.entry_failures)] == [1]
        notifier.log.read_student = read_student  # readable again
        await notifier.claim_stale(0)
        assert await pending(notifier) == 0 and len(smtp.inbox.messages) == 1
        assert rows(notifier, ledger.entry_failures) == [] and rows(notifier, ledger.failed_entries) == []
