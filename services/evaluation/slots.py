"""A lycée's interview slots (SPEC §7): publish one, close one, list them with their free places.

A slot's events are not about a student: each goes to evaluation's stream and to the slot's own stream,
appended at the slot's version (the one script, `shared/runtime/log/append.lua`), so a closing never
slips between a booking's read and its append. Bookings are registration's (its schedule endpoint).
The list reads evaluation's view (tables `slots` and `slot_bookings`), paged in SQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import Field

from shared.contracts.events import (
    Event,
    InterviewMode,
    InterviewSlotClosed,
    InterviewSlotOpened,
    Payload,
    SlotId,
    Text,
)
from shared.contracts.identifiers import UAI, FormationCode
from shared.contracts.personal import ErasedKeyring
from shared.domain.errors import RuleViolation
from shared.domain.rules import require_campaign_open
from shared.domain.slots import SlotFile, SlotNotFound, fold_slot
from shared.domain.student_file import CampaignFile
from shared.runtime.commands import MAX_ATTEMPTS, EventIdReused, Outcome, TooMuchContention, backoff, fingerprint
from shared.runtime.http.app import Runtime, answer_of, runtime
from shared.runtime.http.auth import Principal
from shared.runtime.http.guard import API_DEPENDENCIES, principal, require_own_establishment, require_role
from shared.runtime.http.openapi import Answer, LyceeUAI, Page, after_write, read, write
from shared.runtime.http.requests import (
    CampaignQuery, Integer, Limit, MinPositionQuery, Offset, Time, WriteBody, require_formation,
)
from shared.runtime.projection.slots import apply_slots, slot_page, slot_tables  # noqa: F401 - the view's, re-exported

LYCEE_ROLES = ("lycee_staff", "proviseur")
STAFF_ROLES = ("principal", "referent", "lycee_staff", "proviseur", "rectorat")


# --- the commands ----------------------------------------------------------------------------------


class SlotBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    starts_at: Time
    duration_minutes: Integer = Field(ge=10, le=120)  # JSON's 30.0 is the integer 30
    capacity: Integer = Field(ge=1, le=50)
    mode: InterviewMode
    place: Text(200)


class CloseSlotBody(WriteBody):
    pass


def decide_open(slot: SlotFile, campaign: CampaignFile, now: datetime, body: SlotBody) -> InterviewSlotOpened:
    require_campaign_open(campaign, now)
    if slot.opened:  # a slot id is new: only an id made from a reused event id could meet an opened slot
        raise RuleViolation("slot_exists", "Ce créneau existe déjà.")
    return InterviewSlotOpened(
        slot_id=slot.slot_id,
        lycee_uai=body.lycee_uai,
        formation_code=body.formation_code,
        starts_at=body.starts_at,
        duration_minutes=body.duration_minutes,
        capacity=body.capacity,
        mode=body.mode,
        place=body.place,
    )


def decide_close(slot: SlotFile, campaign: CampaignFile, now: datetime, caller_uai: str | None) -> InterviewSlotClosed:
    if not slot.opened or slot.lycee_uai != caller_uai:
        raise SlotNotFound()
    require_campaign_open(campaign, now)
    if slot.closed:
        raise RuleViolation("slot_closed", "Ce créneau est déjà fermé.")
    return InterviewSlotClosed(slot_id=slot.slot_id, lycee_uai=slot.lycee_uai, formation_code=slot.formation_code)


async def _on_slot(
    rt: Runtime, who: Principal, action: str, slot_id: str, campaign: str | None, body: WriteBody,
    decide: Callable[[SlotFile, CampaignFile, datetime], Payload],
) -> Outcome:
    """A slot's command: decide on the slot's history, append at the slot's version (again on a conflict);
    idempotent by event id as every write (the original answers a retry)."""
    year = campaign or rt.settings.campaign
    log, key = rt.log, rt.keys.slot(year, slot_id)
    event_id = body.event_id or uuid.uuid4()
    digest = fingerprint(action, {**body.request_fields(), "slot": slot_id, "campaign": year, "by": who.user_id},
                         rt.fingerprint_key)

    async def original(prior_fingerprint: str, positions) -> Outcome:  # noqa: ANN001
        if prior_fingerprint != digest:
            raise EventIdReused()
        return Outcome((await log.read_entry(key, positions.student)).event, positions, created=False)

    prior = await log.prior_append(str(event_id), year)
    if prior is not None:
        return await original(prior.fingerprint, prior.positions)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if attempt > 1:
            await backoff(attempt - 1)
        now = datetime.now(UTC)
        history = await log.read_stream(key, ErasedKeyring())  # a slot's decision reads no personal field
        payload = decide(fold_slot(slot_id, [e.event for e in history]), await log.read_campaign(year), now)
        event = Event(event_id=event_id, occurred_at=now, campaign=year, student_ine=None, actor=who.actor,
                      payload=payload)
        appended = await log.append(event, rt.name, len(history), digest)
        if appended.status == "ok":
            stored = event.model_copy(update={"recorded_at": datetime.fromisoformat(appended.recorded_at)})
            return Outcome(stored, appended.positions, created=True)
        if appended.status == "duplicate":
            return await original(appended.fingerprint, appended.positions)
    raise TooMuchContention()


async def open_slot(rt: Runtime, who: Principal, body: SlotBody, campaign: str | None = None) -> Outcome:
    require_formation(rt.reference, body.lycee_uai, body.formation_code)
    require_role(who, *LYCEE_ROLES)
    require_own_establishment(who, body.lycee_uai, "lycee_uai")
    # Made by the service; from the event id when there is one, so a retry names the same slot.
    slot_id = (body.event_id or uuid.uuid4()).hex
    return await _on_slot(
        rt, who, "open-slot", slot_id, campaign, body, lambda slot, camp, now: decide_open(slot, camp, now, body)
    )


async def close_slot(rt: Runtime, who: Principal, slot_id: str, body: CloseSlotBody, campaign: str | None = None) -> Outcome:
    require_role(who, *LYCEE_ROLES)
    return await _on_slot(
        rt, who, "close-slot", slot_id, campaign, body, lambda slot, camp, now: decide_close(slot, camp, now, who.uai)
    )


# --- the API ---------------------------------------------------------------------------------------


class SlotItem(Answer):
    slot_id: str
    campaign: str
    lycee_uai: UAI
    formation_code: FormationCode
    starts_at: datetime
    duration_minutes: int
    capacity: int
    taken: int
    free: int
    mode: InterviewMode
    place: str
    closed: bool


router = APIRouter(prefix="/api", tags=["evaluation"], dependencies=API_DEPENDENCIES)
LINKS = {"creneaux": after_write("list_slots", "Les créneaux, une fois la vue à jour de cet événement")}
SlotIdInPath = Annotated[SlotId, Path(description="Identifiant du créneau")]


@router.post(
    "/slots", status_code=201, operation_id="open_slot", responses=write((403, 409), LINKS),
    summary="Publier un créneau d'entretiens (InterviewSlotOpened)",
)
async def post_slot(body: SlotBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(open_slot(runtime(request), principal(request), body, campaign))


@router.post(
    "/slots/{slot_id}/close", status_code=201, operation_id="close_slot", responses=write((403, 404, 409), LINKS),
    summary="Fermer un créneau (InterviewSlotClosed)",
)
async def post_close_slot(slot_id: SlotIdInPath, request: Request,
                          body: Annotated[CloseSlotBody, Body()] = CloseSlotBody(), campaign: CampaignQuery = None):
    """The body may be left out, or carry the `event_id` of a retried request."""
    return await answer_of(close_slot(runtime(request), principal(request), slot_id, body, campaign))


@router.get(
    "/slots", operation_id="list_slots", response_model=None,
    responses=read(Page[SlotItem], description="Une page des créneaux, avec leurs places libres"),
    summary="Les créneaux d'entretiens et leurs places libres",
)
async def list_slots(
    request: Request,
    campaign: CampaignQuery = None,
    lycee_uai: Annotated[UAI | None, Query(description="Un seul lycée")] = None,
    formation_code: Annotated[FormationCode | None, Query(description="Une seule formation")] = None,
    from_: Annotated[Time | None, Query(alias="from", description="À partir de (RFC 3339)")] = None,
    to: Annotated[Time | None, Query(description="Avant (RFC 3339)")] = None,
    open_only: Annotated[bool, Query(description="Seulement les créneaux ouverts ayant une place libre")] = False,
    min_position: MinPositionQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict:
    rt, who = runtime(request), principal(request)
    require_role(who, *STAFF_ROLES)
    await rt.wait_for(min_position)
    year = campaign or rt.settings.campaign
    slots, bookings = rt.view.slot_tables

    def query() -> tuple[list[dict], int]:
        with rt.engine.connect() as conn:
            return slot_page(conn, slots, bookings, year, lycee_uai, formation_code, from_, to, open_only, limit, offset)

    items, total = await asyncio.to_thread(query)
    return {"items": items, "total": total, "limit": limit, "offset": offset}
