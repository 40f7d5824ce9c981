"""Erasing a student's personal data (RGPD, `passpro forget`): the erasure recorded in the log, then the key destroyed.

The log is never rewritten: the student's personal fields were sealed with a key
of their own, so destroying that key erases them everywhere they were copied.
The erasure is recorded first (`StudentForgotten`, on scoring's stream, so every
view masks the file at once), the key destroyed second: a crash in between
leaves an erasure recorded with its key still there, and running the command
again finds the erasure already recorded and destroys the key. The reverse
order could leave a key destroyed with no trace of why in the log.

Identifiers, avis levels and times stay in clear: the bonus and the audit trail stand.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from services.scoring import domain
from shared.domain.errors import RuleViolation
from shared.contracts.events import Actor, Reason, StudentForgotten
from shared.domain.student_file import StudentFile, fold
from shared.runtime.commands import execute, fingerprint
from shared.runtime.http.guard import french_message
from shared.runtime.keys.store import KeyStore
from shared.runtime.log.client import EventLog

_REASON = TypeAdapter(Reason)
REASON_MAX_LENGTH = 500


class InvalidReason(ValueError):
    """The reason is not a text the log may keep in clear forever."""


class UnknownStudent(LookupError):
    """No campaign holds anything about this student: nothing to erase."""

    def __init__(self, ine: str, campaigns: list[str]) -> None:
        super().__init__(ine)
        self.ine = ine
        self.campaigns = campaigns


@dataclass(frozen=True)
class CampaignErasure:
    campaign: str
    recorded_now: bool  # False: an earlier run had recorded the erasure (the command is idempotent)
    position: str | None  # the StudentForgotten entry in the student's stream
    key_destroyed_now: bool  # False: the key was already destroyed


@dataclass(frozen=True)
class Forgotten:
    ine: str
    erasures: list[CampaignErasure]
    not_found_in: list[str]  # campaigns asked about that hold nothing of the student


def check_reason(text: str) -> str:
    """The reason, trimmed, as the log takes it (the `Reason` type); InvalidReason in French otherwise."""
    try:
        return _REASON.validate_python(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        detail = french_message(error)
        if error["type"] == "string_too_long":
            detail = f"{REASON_MAX_LENGTH} caractères au plus"
        elif error["type"] == "string_too_short":
            detail = "il est obligatoire (un texte non vide)"
        raise InvalidReason(f"motif invalide : {detail}.") from None


def _decide(file: StudentFile, command: domain.Forget) -> StudentForgotten:
    """scoring's decision, with a reason naming the student refused as the command's InvalidReason."""
    try:
        return domain.decide_forget(file, command)
    except RuleViolation as exc:
        if exc.code == "reason_names_student":
            raise InvalidReason(exc.message) from None
        raise


async def _file(log: EventLog, campaign: str, ine: str) -> StudentFile:
    history = await log.read_student(campaign, ine)
    return fold(campaign, ine, [(h.event, h.student_version or n + 1) for n, h in enumerate(history)])


async def forget(
    log: EventLog, keystore: KeyStore, campaign: str | None, ine: str, reason: str, actor: Actor
) -> Forgotten:
    """Erase the student in every campaign that holds them (the key store's, plus `campaign` if given).

    Raises InvalidReason (nothing written) and UnknownStudent (nothing written, no key destroyed)."""
    reason = check_reason(reason)
    asked = set(await asyncio.to_thread(keystore.campaigns_of, ine))
    if campaign:
        asked.add(campaign)
    files = {year: await _file(log, year, ine) for year in sorted(asked)}
    known = {year: f for year, f in files.items() if f.versions}
    if not known:
        raise UnknownStudent(ine, sorted(asked))
    # The rule is scoring's decision, taken again at each append on the file it is conditioned on; asked here
    # of every campaign first so that a refusal in one writes nothing in the others.
    for file in known.values():
        with contextlib.suppress(RuleViolation):  # already erased: _forget_in finds it so again
            _decide(file, domain.Forget(reason))
    erasures = [await _forget_in(log, keystore, year, ine, reason, actor) for year in known]
    return Forgotten(ine, erasures, sorted(set(files) - set(known)))


async def _forget_in(
    log: EventLog, keystore: KeyStore, campaign: str, ine: str, reason: str, actor: Actor
) -> CampaignErasure:
    command = domain.Forget(reason)
    try:
        outcome = await execute(
            log, service="scoring", campaign=campaign, ine=ine, actor=actor, event_id=uuid.uuid4(),
            request_fingerprint=fingerprint("forget", {"ine": ine, "campaign": campaign, "reason": reason,
                                                       "by": actor.user_id}),
            decide=lambda file, _campaign, _now: _decide(file, command),
        )
        recorded_now, position = True, outcome.positions.student
    except RuleViolation as exc:
        if exc.code != "already_erased":
            raise
        # Recorded by an earlier run, which may have stopped before destroying the key: go on.
        recorded_now, position = False, await _erasure_position(log, campaign, ine)
    # Only now, once the erasure is in the log (see the module's docstring).
    destroyed = await asyncio.to_thread(keystore.destroy, campaign, ine)
    return CampaignErasure(campaign, recorded_now, position, destroyed)


async def _erasure_position(log: EventLog, campaign: str, ine: str) -> str | None:
    for logged in await log.read_student(campaign, ine):
        if isinstance(logged.event.payload, StudentForgotten):
            return logged.entry_id
    return None
