"""The services' command handlers, called as the API and the pages call them: given the events in the log,
when a command is handled for a principal, then the events appended — or the refusal, and nothing stored.

Real Redis; no HTTP request is built: a handler takes the command, who acts and the service's runtime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from histories import (
    CAMPAIGN,
    COLLEGE,
    FORMATION,
    INE,
    LYCEE,
    OTHER_LYCEE,
    REFERENT,
    REPORT,
    college_avis,
    held,
    make_event,
    registered,
    scheduled,
)
from services.evaluation import handlers as evaluation
from services.registration import handlers as registration
from services.scoring import handlers as scoring
from shared.contracts.events import CampaignOpened, Payload
from shared.contracts.reference import default_reference_text, parse_reference
from shared.domain.errors import Refusal
from shared.runtime.http.app import Runtime
from shared.runtime.http.auth import Principal
from shared.runtime.log.client import EventLog

PRINCIPAL = Principal(user_id="principal-voltaire", role="principal", uai=COLLEGE)
REFERENT_USER = Principal(user_id="referent-dupont", role="referent", uai=COLLEGE)
STAFF = Principal(user_id="staff-gautier", role="lycee_staff", uai=LYCEE)
PROVISEUR = Principal(user_id="proviseur-gautier", role="proviseur", uai=LYCEE)
OTHER_STAFF = Principal(user_id="staff-deprez", role="lycee_staff", uai=OTHER_LYCEE)
RECTORAT = Principal(user_id="rectorat-dsden", role="rectorat", uai=None)


def service(log: EventLog, name: str) -> Runtime:
    """The part of a service's runtime a handler uses: its log, name, request-digest key, campaign in force
    and reference data (no view, no database: a command reads the log only)."""
    return Runtime(
        name=name, settings=SimpleNamespace(campaign=CAMPAIGN), keys=log.keys, redis=log.redis, engine=None,
        log=log, reference=parse_reference(default_reference_text()), consumer=None, view=None,
        fingerprint_key=b"k" * 32, verified_tokens=None,
    )


async def given(log: EventLog, *payloads: Payload) -> None:
    """Campaign 2027 open, then these events of the student, in order."""
    opened = make_event(CampaignOpened(bonus_points=2500), actor=RECTORAT.actor)
    assert (await log.append(opened, "scoring", 0, "given")).status == "ok"
    for version, payload in enumerate(payloads):
        event = make_event(payload)
        service_name = "evaluation" if payload.EVENT_TYPE in ("InterviewHeld", "LyceeAvisGiven") else "registration"
        assert (await log.append(event, service_name, version, f"given-{version}")).status == "ok"


async def history(log: EventLog) -> list[str]:
    return [h.event.event_type for h in await log.read_student(CAMPAIGN, INE)]


async def refused(log: EventLog, command) -> Refusal:  # noqa: ANN001
    """The refusal of `command`, and proof that it stored nothing."""
    before = await history(log)
    with pytest.raises(Refusal) as caught:
        await command
    assert await history(log) == before
    return caught.value


# --- registration -------------------------------------------------------------------------------------------


def register_body(**changes) -> registration.RegisterBody:  # noqa: ANN003
    fields = {"student_ine": INE, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa",
              "class_name": "3e B", "referent": REFERENT.model_dump()} | changes
    return registration.RegisterBody.model_validate(fields)


async def test_a_principal_registers_a_student_and_a_retry_answers_the_same_event(log: EventLog) -> None:
    await given(log)
    rt, body = service(log, "registration"), register_body(event_id=str(uuid4()))

    first = await registration.register(rt, PRINCIPAL, body)
    again = await registration.register(rt, PRINCIPAL, body)

    assert first.created and first.status == 201 and first.event.event_type == "StudentRegistered"
    assert first.event.actor == PRINCIPAL.actor and first.event.campaign == CAMPAIGN
    assert not again.created and again.status == 200 and again.event.event_id == first.event.event_id
    assert await history(log) == ["StudentRegistered"]


async def test_registering_twice_is_refused_by_the_rule_and_stores_nothing(log: EventLog) -> None:
    await given(log, registered())
    refusal = await refused(log, registration.register(service(log, "registration"), PRINCIPAL, register_body()))
    assert (refusal.status, refusal.code) == (409, "already_registered")


async def test_the_reference_data_is_checked_before_the_role_then_the_role_before_the_history(log: EventLog) -> None:
    await given(log, registered())
    rt = service(log, "registration")
    unknown = await refused(log, registration.register(rt, REFERENT_USER, register_body(college_uai=LYCEE)))
    assert (unknown.status, unknown.code) == (422, "unknown_college")
    role = await refused(log, registration.register(rt, REFERENT_USER, register_body()))
    assert (role.status, role.code) == (403, "role_forbidden")


async def test_a_referent_schedules_an_interview_with_an_identifier_made_by_the_handler(log: EventLog) -> None:
    await given(log, registered(), college_avis())
    body = registration.ScheduleBody.model_validate(
        {"lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": datetime.now(UTC) + timedelta(days=3),
         "mode": "presentiel"}
    )
    outcome = await registration.schedule_interview(service(log, "registration"), REFERENT_USER, INE, body)

    assert outcome.event.event_type == "InterviewScheduled" and outcome.event.payload.interview_id
    assert await history(log) == ["StudentRegistered", "CollegeAvisGiven", "InterviewScheduled"]


async def test_a_college_avis_after_a_held_interview_is_refused_and_stores_nothing(log: EventLog) -> None:
    await given(log, registered(), scheduled(), held(college_avis_present=False))
    body = registration.CollegeAvisBody.model_validate(
        {"college_uai": COLLEGE, "avis": "favorable", "comment": "Très motivée."}
    )
    refusal = await refused(log, registration.give_college_avis(service(log, "registration"), PRINCIPAL, INE, body))
    assert (refusal.status, refusal.code) == (409, "college_avis_after_interview")


async def test_withdraw_then_reinstate(log: EventLog) -> None:
    await given(log, registered())
    rt, reason = service(log, "registration"), registration.ReasonBody.model_validate({"reason": "Déménagement"})
    await registration.withdraw(rt, PRINCIPAL, INE, reason)
    await registration.reinstate(rt, PRINCIPAL, INE, reason)
    refusal = await refused(log, registration.reinstate(rt, PRINCIPAL, INE, reason))
    assert refusal.code == "not_withdrawn"
    assert await history(log) == ["StudentRegistered", "StudentWithdrawn", "StudentReinstated"]


# --- evaluation ---------------------------------------------------------------------------------------------


def held_body(held_at: datetime) -> evaluation.HeldBody:
    return evaluation.HeldBody.model_validate(
        {"lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": held_at, "report": REPORT.model_dump()}
    )


async def test_the_lycee_records_an_interview_held_and_flags_the_missing_college_avis(log: EventLog) -> None:
    await given(log, registered(), scheduled())
    outcome = await evaluation.record_held(
        service(log, "evaluation"), STAFF, INE, held_body(datetime.now(UTC) - timedelta(hours=1))
    )
    assert outcome.event.event_type == "InterviewHeld"
    assert outcome.event.payload.college_avis_present is False  # rule 5: recorded, flagged
    assert await history(log) == ["StudentRegistered", "InterviewScheduled", "InterviewHeld"]


async def test_a_held_at_in_the_future_is_refused_before_rights_and_rules(log: EventLog) -> None:
    await given(log, registered(), scheduled())
    future = held_body(datetime.now(UTC) + timedelta(hours=1))
    refusal = await refused(log, evaluation.record_held(service(log, "evaluation"), OTHER_STAFF, INE, future))
    assert (refusal.status, refusal.code) == (422, "held_in_future")


async def test_only_the_proviseur_gives_the_lycee_avis_and_only_after_a_held_interview(log: EventLog) -> None:
    rt = service(log, "evaluation")
    avis = evaluation.LyceeAvisBody.model_validate({"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"})
    await given(log, registered(), college_avis(), scheduled())

    assert (await refused(log, evaluation.give_lycee_avis(rt, STAFF, INE, avis))).code == "role_forbidden"
    assert (await refused(log, evaluation.give_lycee_avis(rt, PROVISEUR, INE, avis))).code == "no_held_interview"
    await evaluation.record_held(rt, STAFF, INE, held_body(datetime.now(UTC) - timedelta(hours=1)))
    outcome = await evaluation.give_lycee_avis(rt, PROVISEUR, INE, avis)
    assert outcome.event.event_type == "LyceeAvisGiven" and outcome.event.actor == PROVISEUR.actor


async def test_another_lycee_may_not_cancel_the_interview(log: EventLog) -> None:
    await given(log, registered(), scheduled())
    body = evaluation.CancelBody.model_validate({"lycee_uai": LYCEE, "formation_code": FORMATION, "reason": "Grève"})
    refusal = await refused(log, evaluation.cancel_interview(service(log, "evaluation"), OTHER_STAFF, INE, body))
    assert (refusal.status, refusal.code) == (403, "other_establishment")


# --- scoring ------------------------------------------------------------------------------------------------


async def test_the_rectorat_opens_a_campaign_once(log: EventLog) -> None:
    rt = service(log, "scoring")
    body = scoring.CampaignBody.model_validate({"campaign": "2031", "bonus_points": 3000})

    outcome = await scoring.open_campaign(rt, RECTORAT, body)
    assert outcome.created and outcome.event.event_type == "CampaignOpened"
    assert (await log.read_campaign("2031")).bonus_points == 3000

    again = scoring.CampaignBody.model_validate({"campaign": "2031"})
    with pytest.raises(Refusal) as refusal:
        await scoring.open_campaign(rt, RECTORAT, again)
    assert refusal.value.code == "campaign_already_open"
    with pytest.raises(Refusal) as forbidden:
        await scoring.open_campaign(rt, PRINCIPAL, scoring.CampaignBody.model_validate({"campaign": "2032"}))
    assert forbidden.value.code == "role_forbidden"
    assert await log.rectorat_version() == 1
