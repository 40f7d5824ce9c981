"""Key names of the log (SPEC §4) and the log's own entry fields.

Every key carries the académie as a Redis Cluster hash tag (`{paris}`), so one
académie lives on one shard and the append script may touch all its keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts.events import Event, event_from_fields
from shared.contracts.personal import SEALED, Keyring

# The services whose streams carry student events; scoring writes only the rectorat's erasures.
PRODUCING_SERVICES = ("registration", "evaluation", "scoring")

# Fields the append script adds to the event's own fields (SPEC §4 entry format), besides `recorded_at`,
# which the event model reads as its own.
STUDENT_VERSION = "student_version"  # the student's version this event created (1, 2, ...)
PREV_HASH = "prev_hash"  # chain: hash of the previous entry of the same service stream
HASH = "hash"
GENESIS_HASH = "0" * 40


@dataclass(frozen=True)
class StreamKeys:
    academie: str = "paris"

    @property
    def prefix(self) -> str:
        return f"passpro:{{{self.academie}}}"

    @property
    def rectorat(self) -> str:
        return f"{self.prefix}:rectorat"

    def service(self, campaign: str, service: str) -> str:
        return f"{self.prefix}:{campaign}:{service}"

    def student(self, campaign: str, ine: str) -> str:
        return f"{self.prefix}:{campaign}:student:{ine}"

    def slot(self, campaign: str, slot_id: str) -> str:
        """A lycée's interview slot (SPEC §7): its opening and closing, and every booking, cancellation and
        move that takes or frees one of its places, each conditioned on this stream's version."""
        return f"{self.prefix}:{campaign}:slot:{slot_id}"

    def access_log(self, campaign: str, ine: str) -> str:
        """Who read the student's file: append-only, never rewritten; purged with its campaign."""
        return f"{self.prefix}:{campaign}:access:{ine}"

    def event_ids(self, campaign: str | None) -> str:
        """Hash event_id -> request fingerprint and positions, for idempotent appends."""
        return f"{self.prefix}:{campaign or 'rectorat'}:event-ids"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}:dead-letters"

    @property
    def reference(self) -> str:
        return f"{self.prefix}:reference"

    def campaign_streams(self, campaign: str) -> list[str]:
        return [self.service(campaign, s) for s in PRODUCING_SERVICES]

    def stream_name(self, key: str) -> str:
        """The short name of a stream key, e.g. `2027:registration`, for positions and messages."""
        return key.removeprefix(self.prefix + ":")


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the log holds it: where it is, and the student version it made."""

    event: Event
    stream: str
    entry_id: str
    student_version: int | None
    hash: str | None = None


def logged_event_from_entry(
    stream: str, entry_id: str, fields: dict[str, str], keyring: Keyring | None = None
) -> LoggedEvent:
    version = fields.get(STUDENT_VERSION)
    return LoggedEvent(
        event=event_from_fields(fields, keyring),
        stream=stream,
        entry_id=entry_id,
        student_version=int(version) if version else None,
        hash=fields.get(HASH),
    )


def sealed_student(fields: dict[str, str]) -> tuple[str, str] | None:
    """(campaign, INE) of an entry whose personal fields are sealed, whose key a reader needs."""
    if fields.get(SEALED) and fields.get("student_ine"):
        return fields.get("campaign", ""), fields["student_ine"]
    return None


def entry_id_key(entry_id: str) -> tuple[int, int]:
    """Sort key of a stream entry id (`ms-seq`)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
