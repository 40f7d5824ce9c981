"""A slot's place (InterviewSlotOpened.place: the lycée's room, or how the video link is given, SPEC §7) is in the
référent's convocation e-mail for an interview booked on that slot, read from the slot's own stream; a move to a
free time has no slot, so no slot place. Real Redis, real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from notifier_world import Clock, SmtpServer, Student, html_of, settings_for, text_of, wait_async

from services.notifier.process import opened
from shared.contracts.events import InterviewRescheduled
from tests.shared.event_factories import (
    FORMATION, INTERVIEW_ID, LYCEE, SLOT_ID, T0, ine_number, make_event, registered, scheduled, slot_opened,
)

AT = T0 + timedelta(days=10)


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


async def test_the_slots_place_is_in_the_convocation_and_not_after_a_move_to_a_free_time(
    log, smtp, academie, redis_url, tmp_path,
):
    opened_slot = make_event(slot_opened(), ine=None)
    appended = await log.append(opened_slot, "evaluation", 0, str(opened_slot.event_id))
    assert appended.status == "ok", appended
    student = Student(log, ine_number(1))
    await student.add(registered())
    await student.add(scheduled(at=AT).model_copy(update={"slot_id": SLOT_ID}))
    await student.add(InterviewRescheduled(interview_id=INTERVIEW_ID, lycee_uai=LYCEE, formation_code=FORMATION,
                                           scheduled_at=AT + timedelta(days=1), mode="presentiel"))
    settings = settings_for(academie, redis_url, tmp_path / "notifier", smtp.url, block_ms=50, timer_seconds=0.05)
    async with opened(settings, clock=Clock(T0)) as notifier:
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run(stop))
        try:
            await wait_async(lambda: len(smtp.inbox.messages) >= 2, what="two convocations")
        finally:
            stop.set()
            await task
    booked, moved = sorted(smtp.inbox.messages, key=lambda m: "déplacé" in m["Subject"])
    assert "Salle au lycée : Salle B12" in text_of(booked)
    assert "<strong>Salle au lycée :</strong> Salle B12" in html_of(booked)
    assert "déplacé" in moved["Subject"] and "Salle B12" not in text_of(moved)
