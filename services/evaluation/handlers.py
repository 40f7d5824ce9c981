"""The lycée's commands, one handler each, shared by the API and the pages.

A handler takes the command (the request's validated body), who acts and the service's runtime: it
checks the reference data and the caller's rights, then runs the domain's decision on the student's
history and appends at the version read (`shared.runtime.commands`). No HTTP request reaches it.
"""

from __future__ import annotations

import asyncio

from services.evaluation import domain, queries
from shared.contracts.events import InterviewMode, LyceeAvis, Report, Text
from shared.contracts.identifiers import FormationCode
from shared.domain.student_file import ready_letter
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


# --- Reads shared by the API and the pages -------------------------------------------------------------


async def interviews_page(
    rt: Runtime, who: Principal, campaign: str | None, lycee_uai: str | None, min_position: str | None,
    limit: int | None, offset: int, formation_code: str | None = None, status: str | None = None,
) -> dict:
    """A page of the caller's interviews (`limit` from `offset`, all when None; of one formation and status
    if given) and their total, paged in SQL: only the page's files are read. Unlogged: each caller logs
    the students it shows."""
    require_role(who, *LYCEE_ROLES, "rectorat")
    if lycee_uai is not None and who.role != "rectorat":  # another lycée is refused, never silently ignored
        require_own_establishment(who, lycee_uai, "lycee_uai")
    await rt.wait_for(min_position)
    year = campaign or rt.settings.campaign
    lycee = lycee_uai if who.role == "rectorat" else who.uai

    def query() -> tuple[list, int]:
        with rt.engine.connect() as conn:
            rows = queries.lycee_interviews(conn, year, lycee, limit, offset, formation_code, status)
            return rows, queries.count_lycee_interviews(conn, year, lycee, formation_code, status)

    items = []
    rows, total = await asyncio.to_thread(query)
    for row, file in rows:
        interview = file.interviews[row["interview_id"]]
        latest = file.latest_lycee_avis(interview.lycee_uai, interview.formation_code)
        items.append(
            {
                "ine": file.ine,
                "campaign": file.campaign,
                "last_name": file.last_name,
                "first_name": file.first_name,
                "college_uai": file.college_uai,
                "interview_id": interview.interview_id,
                "lycee_uai": interview.lycee_uai,
                "formation_code": interview.formation_code,
                "scheduled_at": row["scheduled_at"],
                "mode": interview.mode,
                "status": interview.status,
                "college_avis": file.college_avis,
                "college_comment": file.college_comment,
                "college_avis_missing": file.college_avis is None,
                "held_at": interview.held_at.isoformat() if interview.held_at else None,
                "report": interview.report.model_dump(mode="json") if interview.report else None,
                "lycee_avis": latest.avis if latest else None,
                "student_withdrawn": file.withdrawn,
                "letter": ready_letter(file, interview.lycee_uai, interview.formation_code),
            }
        )
    return {"items": items, "total": total, "limit": limit, "offset": offset}
