"""The audit's logic, without I/O: chain and checkpoint checks, a replay of the projection, cross-checks of the
streams (a student's timeline is timeline.py).

Why a SHA-1 chain *and* HMAC checkpoints. The chain (`prev_hash`, `hash`) is
computed inside the append script, in the same atomic step as the XADD, so no
two appends can ever chain to the same predecessor; the price is that Redis
scripts offer only `redis.sha1hex`. The chain alone proves little against
someone who can write to Redis: it has no secret, so whoever rewrites an
entry can recompute every hash after it. What gives the cryptographic
strength is the checkpoints: from time to time the scoring service signs a
stream's head (entry id, hash, length) with HMAC-SHA256 under a key Redis
never sees, and keeps the signature in its own database. A rewritten,
removed or reordered entry before a checkpoint changes the hash at the
checkpoint (or removes its entry), and forging a new checkpoint needs the
key. SHA-1 is enough for the chain's part: keeping an entry's hash while
changing it needs a second preimage, which nobody can compute for SHA-1; the
known collision attacks need both colliding texts prepared in advance for a
known prefix, and here the prefix is the previous entry's hash, which exists
only at the moment of the append, inside text the services validate. What
neither detects is an append at the tail, after the last checkpoint, that
follows the script's own rules (both streams, the event-id index): that is
an append, as trusted as Redis's access control. So checkpoint often; the
cross-checks below (student streams, event-id index, the projection's
positions) catch the clumsier attempts in between.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.scoring.domain import bonus_of
from shared.contracts.events import CampaignOpened, UnknownEventType, UnreadableEntry
from shared.contracts.personal import Keyring
from shared.contracts.streams import (
    GENESIS_HASH,
    HASH,
    PREV_HASH,
    STUDENT_VERSION,
    LoggedEvent,
    entry_id_key,
    logged_event_from_entry,
)
from shared.domain.student_file import StudentFile, empty_file, evolve
from shared.runtime.log.client import entry_hash  # beside append.lua, whose hash it mirrors
from shared.runtime.projection.consumer import START  # a view's position before it has read anything


@dataclass(frozen=True)
class Difference:
    """One thing the log and what should follow from it disagree on, named for a person."""

    code: str  # stable machine name, e.g. `chain_broken`
    where: str  # the stream and entry, or the campaign, student and vœu
    message: str  # French

    def __str__(self) -> str:
        return f"[{self.code}] {self.where} : {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "where": self.where, "message": self.message}


# --- the chain ------------------------------------------------------------------------


def _bytes(value: str) -> bytes:
    # surrogateescape gives back the exact bytes Redis holds, even for an entry that is not UTF-8.
    return value.encode("utf-8", "surrogateescape")


def where(stream: str, entry_id: str | None = None) -> str:
    return f"{stream} {entry_id}" if entry_id else stream


class Chain:
    """Follows one service stream entry by entry: each `prev_hash` must be the previous entry's
    `hash`, and each `hash` must recompute from the entry's fields."""

    def __init__(self, stream: str, head_hash: str = GENESIS_HASH, length: int = 0, head_id: str | None = None):
        self.stream = stream
        self.head_hash = head_hash
        self.head_id = head_id
        self.length = length

    def feed(self, entry_id: str, fields: Mapping[str, str], content: str | None = None) -> list[Difference]:
        """`content` is `entry_hash(fields)` when the caller has it already."""
        found: list[Difference] = []
        self.length += 1
        if fields.get(PREV_HASH) != self.head_hash:
            before = f"l'entrée {self.head_id}" if self.head_id else "le début du flux"
            found.append(
                Difference(
                    "chain_broken",
                    where(self.stream, entry_id),
                    f"prev_hash {fields.get(PREV_HASH)!s} ne suit pas le hash de {before} ({self.head_hash}) : "
                    "une entrée a été supprimée, insérée ou déplacée.",
                )
            )
        if fields.get(HASH) != (content or entry_hash(fields)):
            found.append(
                Difference(
                    "hash_mismatch",
                    where(self.stream, entry_id),
                    "le contenu de l'entrée ne correspond plus à son hash : un champ a été modifié.",
                )
            )
        # Go on from what is stored, so one tampered entry is named once rather than every entry after it.
        self.head_hash = fields.get(HASH) or content or entry_hash(fields)
        self.head_id = entry_id
        return found


# --- signed checkpoints ---------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A stream's head as the scoring service saw it: the entry at `length`, its hash, when, signed."""

    stream: str  # the stream's full key
    entry_id: str
    hash: str
    length: int
    recorded_at: str
    hmac: str = ""

    def message(self) -> bytes:
        return _bytes(
            "\n".join(
                ["passpro-checkpoint-v1", self.stream, self.entry_id, self.hash, str(self.length), self.recorded_at]
            )
        )

    def signed(self, key: bytes) -> Checkpoint:
        return Checkpoint(self.stream, self.entry_id, self.hash, self.length, self.recorded_at, self._mac(key))

    def is_authentic(self, key: bytes) -> bool:
        return hmac.compare_digest(self._mac(key), self.hmac)

    def _mac(self, key: bytes) -> str:
        return hmac.new(key, self.message(), hashlib.sha256).hexdigest()


class CheckpointWatch:
    """While a stream is read entry by entry, checks that each checkpoint of it still holds."""

    def __init__(self, stream: str, checkpoints: Iterable[Checkpoint], key: bytes | None):
        self.stream = stream
        self.key = key
        self.pending: dict[str, list[Checkpoint]] = {}
        self.checked = 0
        for cp in checkpoints:
            self.pending.setdefault(cp.entry_id, []).append(cp)

    def authenticity(self) -> list[Difference]:
        if self.key is None:
            return []
        return [
            Difference(
                "checkpoint_forged",
                where(self.stream, cp.entry_id),
                f"la signature du point de contrôle du {cp.recorded_at} est invalide : il a été modifié ou "
                "fabriqué sans la clé.",
            )
            for cps in self.pending.values()
            for cp in cps
            if not cp.is_authentic(self.key)
        ]

    def feed(self, entry_id: str, fields: Mapping[str, str], length: int) -> list[Difference]:
        found: list[Difference] = []
        for cp in self.pending.pop(entry_id, []):
            self.checked += 1
            if fields.get(HASH) != cp.hash:
                found.append(
                    Difference(
                        "checkpoint_hash_differs",
                        where(self.stream, entry_id),
                        f"le point de contrôle du {cp.recorded_at} a signé le hash {cp.hash}, le journal porte "
                        f"{fields.get(HASH)} : l'historique jusqu'à cette entrée a été réécrit.",
                    )
                )
            if length != cp.length:
                found.append(
                    Difference(
                        "checkpoint_length_differs",
                        where(self.stream, entry_id),
                        f"le point de contrôle du {cp.recorded_at} a signé {cp.length} entrées jusqu'ici, le journal "
                        f"en a {length} : des entrées ont été supprimées ou ajoutées avant.",
                    )
                )
        return found

    def finish(self) -> list[Difference]:
        missing = [
            Difference(
                "checkpoint_entry_missing",
                where(self.stream, cp.entry_id),
                f"l'entrée signée par le point de contrôle du {cp.recorded_at} n'est plus dans le flux : "
                "elle a été supprimée, ou le flux recréé.",
            )
            for cps in self.pending.values()
            for cp in cps
        ]
        self.checked += len(missing)
        self.pending = {}
        return missing


# --- the projection, replayed ---------------------------------------------------------

VoeuKey = tuple[str, str, str, str]  # campaign, ine, lycee_uai, formation_code
TotalKey = tuple[str, str]  # campaign, ine
VOEU_COLUMNS = ("college_uai", "lycee_avis", "bonus_points", "interview_held", "college_avis_present")
TOTAL_COLUMNS = ("college_uai", "college_avis", "withdrawn", "total_bonus_points")


def is_within(entry_id: str, position: str | None) -> bool:
    return position is not None and entry_id_key(entry_id) <= entry_id_key(position)


@dataclass
class Replay:
    """The projection as the log says it should be, folding only what the projection says it has read:
    comparing up to the stored positions needs no waiting and is never fooled by a view still catching up."""

    positions: Mapping[str, str]  # the projection's read positions, by stream key
    bonus_points: dict[str, int] = field(default_factory=dict)
    files: dict[TotalKey, StudentFile] = field(default_factory=dict)

    def read(self, logged: LoggedEvent) -> None:
        if not is_within(logged.entry_id, self.positions.get(logged.stream)):
            return
        event = logged.event
        if isinstance(event.payload, CampaignOpened):
            self.bonus_points[event.campaign] = event.payload.bonus_points
        elif event.student_ine is not None and logged.student_version is not None:
            key = (event.campaign, event.student_ine)
            file = self.files.get(key) or empty_file(*key)
            self.files[key] = evolve(file, event, logged.student_version)

    def rows(self) -> tuple[dict[VoeuKey, dict], dict[TotalKey, dict]]:
        voeux: dict[VoeuKey, dict] = {}
        totals: dict[TotalKey, dict] = {}
        for (campaign, ine), file in self.files.items():
            bonus = bonus_of(file, self.bonus_points.get(campaign, 0))
            for v in bonus.voeux:
                voeux[(campaign, ine, v.lycee_uai, v.formation_code)] = {
                    "college_uai": file.college_uai,
                    "lycee_avis": v.lycee_avis,
                    "bonus_points": v.bonus_points,
                    "interview_held": v.interview_held,
                    "college_avis_present": v.college_avis_present,
                }
            totals[(campaign, ine)] = {
                "college_uai": file.college_uai,
                "college_avis": file.college_avis,
                "withdrawn": file.withdrawn,
                "total_bonus_points": bonus.total_bonus_points,
            }
        return voeux, totals


def compare_rows(
    what: str,
    expected: Mapping[tuple, Mapping[str, Any]],
    actual: Mapping[tuple, Mapping[str, Any]],
    columns: tuple[str, ...],
    describe_key: Callable[[tuple], str],
    note: Callable[[tuple], str] = lambda key: "",
) -> list[Difference]:
    """Every row the log and the projection disagree on, column by column."""
    found: list[Difference] = []
    for key in sorted(set(expected) | set(actual), key=lambda k: tuple(str(p) for p in k)):
        place = describe_key(key)
        if key not in actual:
            message = f"absent de la projection ; le journal donne {_fmt(expected[key], columns)}."
            found.append(Difference(f"{what}_missing", place, message + note(key)))
        elif key not in expected:
            message = (
                f"dans la projection ({_fmt(actual[key], columns)}) sans aucun événement du journal qui l'explique."
            )
            found.append(Difference(f"{what}_unexplained", place, message + note(key)))
        else:
            want, have = expected[key], actual[key]
            for column in columns:
                if want[column] != have[column]:
                    message = f"{column} : projection {have[column]!r}, journal {want[column]!r}."
                    found.append(Difference(f"{what}_differs", place, message + note(key)))
    return found


def _fmt(row: Mapping[str, Any], columns: tuple[str, ...]) -> str:
    return ", ".join(f"{c}={row[c]!r}" for c in columns)


def compare_projection(
    expected: tuple[dict[VoeuKey, dict], dict[TotalKey, dict]],
    actual: tuple[dict[VoeuKey, dict], dict[TotalKey, dict]],
    parked: Iterable[str] = (),
) -> list[Difference]:
    """The projection against the replay. `parked` (`campaign:ine`) are the students the projection holds
    back behind a dead letter: their differences are still differences, with the reason said."""
    waiting = set(parked)

    def note(key: tuple) -> str:
        if f"{key[0]}:{key[1]}" in waiting:
            return " L'élève est en attente derrière une lettre morte de la projection (passpro dlq list)."
        return ""

    def student(key: tuple) -> str:
        return f"campagne {key[0]} élève {key[1]}"

    return compare_rows(
        "voeu", expected[0], actual[0], VOEU_COLUMNS, lambda k: f"{student(k)} vœu {k[2]}/{k[3]}", note
    ) + compare_rows("student_total", expected[1], actual[1], TOTAL_COLUMNS, student, note)


# --- student streams and the event-id index, against the service streams ---------------


@dataclass(frozen=True)
class ServiceEntry:
    """What a service stream says of one event: where it is and the hash of its fields."""

    stream: str
    entry_id: str
    hash: str  # as stored
    content: str  # as recomputed from the fields: a student copy must match both
    campaign: str
    ine: str | None


class CrossCheck:
    """Every student stream must hold exactly its student's entries of the service streams, with the
    same fields, versions 1..n; the event-id index must point at them."""

    def __init__(self) -> None:
        self.by_event: dict[str, ServiceEntry] = {}
        self.student_ids: dict[str, str] = {}  # event_id -> its entry id in the student stream

    def service_entry(
        self, stream: str, entry_id: str, fields: Mapping[str, str], content: str | None = None
    ) -> list[Difference]:
        event_id = fields.get("event_id", "")
        if event_id in self.by_event:
            first = self.by_event[event_id]
            return [
                Difference(
                    "event_duplicated",
                    where(stream, entry_id),
                    f"l'événement {event_id} est déjà dans le journal ({first.stream} {first.entry_id}).",
                )
            ]
        self.by_event[event_id] = ServiceEntry(
            stream,
            entry_id,
            fields.get(HASH, ""),
            content or entry_hash(fields),
            fields.get("campaign", ""),
            fields.get("student_ine") or None,
        )
        return []

    def student_stream(
        self, stream: str, campaign: str, ine: str, entries: list[tuple[str, Mapping[str, str]]]
    ) -> list[Difference]:
        found: list[Difference] = []
        for n, (entry_id, fields) in enumerate(entries, start=1):
            event_id = fields.get("event_id", "")
            origin = self.by_event.get(event_id)
            place = where(stream, entry_id)
            if origin is None or origin.ine is None:
                found.append(
                    Difference(
                        "student_entry_unknown",
                        place,
                        f"l'événement {event_id} n'est dans aucun flux de service : son entrée de service a été "
                        "supprimée, ou celle-ci a été ajoutée à la main.",
                    )
                )
                continue
            if (origin.campaign, origin.ine) != (campaign, ine):
                message = f"l'événement {event_id} concerne l'élève {origin.ine} (campagne {origin.campaign})."
                found.append(Difference("student_entry_misplaced", place, message))
            if fields.get(HASH) != origin.hash or entry_hash(fields) != origin.content:
                message = f"les champs de l'événement {event_id} diffèrent de {origin.stream} {origin.entry_id}."
                found.append(Difference("student_entry_differs", place, message))
            if fields.get(STUDENT_VERSION) != str(n):
                message = f"version {fields.get(STUDENT_VERSION)} à la place {n} : une entrée manque ou a été déplacée."
                found.append(Difference("student_version_gap", place, message))
            if event_id in self.student_ids:
                message = f"l'événement {event_id} apparaît deux fois."
                found.append(Difference("student_entry_duplicated", place, message))
            self.student_ids[event_id] = entry_id
        return found

    def missing_from_student_streams(self) -> list[Difference]:
        return [
            Difference(
                "student_entry_missing",
                where(a.stream, a.entry_id),
                f"l'événement {event_id} de l'élève {a.ine} manque à son flux d'élève.",
            )
            for event_id, a in self.by_event.items()
            if a.ine is not None and event_id not in self.student_ids
        ]

    def event_index(self, index_key: str, index: Mapping[str, str]) -> list[Difference]:
        """`index` is the append script's event-id hash: event_id -> `fingerprint|service_id|student_id`."""
        found: list[Difference] = []
        for event_id, value in sorted(index.items()):
            parts = value.rsplit("|", 2)
            service_id, student_id = (parts[1], parts[2]) if len(parts) == 3 else ("?", "?")
            origin = self.by_event.get(event_id)
            if origin is None:
                found.append(
                    Difference(
                        "event_missing",
                        where(index_key),
                        f"l'événement {event_id} a été enregistré en {service_id} mais n'est plus dans le journal : "
                        "son entrée a été supprimée.",
                    )
                )
                continue
            if origin.entry_id != service_id:
                found.append(
                    Difference(
                        "event_moved",
                        where(origin.stream, origin.entry_id),
                        f"l'événement {event_id} a été enregistré en {service_id} : le flux a été réécrit.",
                    )
                )
            if origin.ine is not None and event_id in self.student_ids and self.student_ids[event_id] != student_id:
                found.append(
                    Difference(
                        "event_moved",
                        where(origin.stream, origin.entry_id),
                        f"l'événement {event_id} a été enregistré dans le flux de l'élève en {student_id}, il y est "
                        f"en {self.student_ids[event_id]} : le flux de l'élève a été réécrit.",
                    )
                )
        return found

    def not_indexed(self, indexed: set[str]) -> list[Difference]:
        return [
            Difference(
                "event_not_indexed",
                where(a.stream, a.entry_id),
                f"l'événement {event_id} n'a pas été écrit par le script d'ajout (absent de l'index des identifiants).",
            )
            for event_id, a in self.by_event.items()
            if event_id not in indexed
        ]


def read_logged(stream: str, entry_id: str, fields: Mapping[str, str], keyring: Keyring) -> LoggedEvent | str | None:
    """The entry as an event; None for a type this code does not know; the reason if unreadable.
    Checks that need no personal field pass ErasedKeyring(): they never hold a key."""
    try:
        return logged_event_from_entry(stream, entry_id, dict(fields), keyring)
    except UnknownEventType:
        return None
    except UnreadableEntry as exc:
        return str(exc)
