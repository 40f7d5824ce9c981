"""The lycée's commands, one handler each, shared by the API and the pages.

A handler takes the command (the request's validated body), who acts and the service's runtime: it
checks the reference data and the caller's rights, then runs the domain's decision on the student's
history and appends at the version read (`shared.runtime.commands`). No HTTP request reaches it.
"""

from __future__ import annotations

from datetime import datetime

from services.evaluation import domain
from shared.contracts.events import InterviewMode, LyceeAvis, Report, Text
from shared.contracts.identifiers import FormationCode
from shared.runtime.commands import Outcome
from shared.runtime.http.app import Runtime
from shared.runtime.http.auth import Principal
from shared.runtime.http.guard import require_own_establishment, require_role
from shared.runtime.http.openapi import LyceeUAI
from shared.runtime.http.requests import Time, WriteBody, require_formation
from shared.runtime.slots import related_slots

LYCEE_ROLES = ("lycee_staff", "proviseur")


class HeldBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    held_at: Time
    mode: InterviewMode | None = None
    report: Report


class CancelBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    reason: Text(500)


class ReportBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    report: Report


class LyceeAvisBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    avis: LyceeAvis


async def _run(
    rt: Runtime, who: Principal, action: str, ine: str, campaign: str | None, body, command, roles,  # noqa: ANN001
    frees_slot: bool = False,
) -> Outcome:
    # The order of the checks is the API's contract: reference data (422), role and establishment (403),
    # then the rules on the student's history (404, 409).
    require_formation(rt.reference, body.lycee_uai, body.formation_code)
    require_role(who, *roles)
    require_own_establishment(who, body.lycee_uai, "lycee_uai")
    # SPEC §7 rule 9: a cancellation frees its slot's place in the same append, conditioned on the slot's stream.
    related = None
    if frees_slot:
        voeu = (body.lycee_uai, body.formation_code)
        related = related_slots(
            rt.keys, campaign or rt.settings.campaign,
            lambda file: [i.slot_id for i in [file.active_interview(*voeu)] if i],
        )
    return await rt.command(
        who, action, ine, campaign, body,
        (lambda file, camp, now, *_: domain.decide(file, camp, now, command, who.uai)), related,
    )


async def record_held(rt: Runtime, who: Principal, ine: str, body: HeldBody, campaign: str | None = None) -> Outcome:
    domain.check_held_at(body.held_at, rt.clock())  # a 422: before rights, visibility and rules
    command = domain.RecordHeld(body.lycee_uai, body.formation_code, body.held_at, body.mode, body.report)
    return await _run(rt, who, "held", ine, campaign, body, command, LYCEE_ROLES)


async def cancel_interview(
    rt: Runtime, who: Principal, ine: str, body: CancelBody, campaign: str | None = None
) -> Outcome:
    command = domain.CancelInterview(body.lycee_uai, body.formation_code, body.reason)
    return await _run(rt, who, "cancel", ine, campaign, body, command, LYCEE_ROLES, frees_slot=True)


async def correct_report(rt: Runtime, who: Principal, ine: str, body: ReportBody, campaign: str | None = None) -> Outcome:
    """SPEC §7: the lycée corrects a held interview's report until the lycée avis; the latest counts."""
    command = domain.CorrectReport(body.lycee_uai, body.formation_code, body.report)
    return await _run(rt, who, "report", ine, campaign, body, command, LYCEE_ROLES)


async def give_lycee_avis(
    rt: Runtime, who: Principal, ine: str, body: LyceeAvisBody, campaign: str | None = None
) -> Outcome:
    command = domain.GiveLyceeAvis(body.lycee_uai, body.formation_code, body.avis)
    return await _run(rt, who, "lycee-avis", ine, campaign, body, command, ("proviseur",))
