"""Which fields of an event are a student's personal data, and how an entry keeps them sealed.

The log is never rewritten, so personal data is stored encrypted with a key of
the student's own (crypto-shredding): destroying the key erases the data
everywhere it was copied. Identifiers (INE, UAI, formation codes), avis and
assessment levels, times and the chain stay in clear, so the bonus, the rules
and `passpro audit verify` never need a key.

An entry of an event with personal fields carries its payload without them and
a `sealed` field: the personal fields, as JSON, encrypted by a `Keyring`. An
entry without `sealed` (written before sealing existed) holds them in clear.
"""

from __future__ import annotations

from typing import Any, Protocol

ERASED = "[effacé]"  # what a personal field reads once its student's key is destroyed
SEALED = "sealed"  # the entry field holding the encrypted personal fields

# Dotted paths into the payload, per event type (SPEC §3). Everything else is in clear.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "StudentRegistered": ("last_name", "first_name", "class_name", "referent.name", "referent.email"),
    "ReferentReassigned": ("referent.name", "referent.email"),
    "InterviewCancelled": ("reason",),
    "CollegeAvisGiven": ("comment",),
    "StudentWithdrawn": ("reason",),
    "StudentReinstated": ("reason",),
    "InterviewHeld": ("report.advice",),
    "InterviewReportCorrected": ("report.advice",),
    "MotivationLetterSaved": ("answers",),
}


# The same paths split once: (parents, leaf), for the read path's speed.
_SPLIT_PATHS: dict[str, tuple[tuple[str, tuple[str, ...], str], ...]] = {
    event_type: tuple((path, tuple(path.split(".")[:-1]), path.split(".")[-1]) for path in paths)
    for event_type, paths in PERSONAL_FIELDS.items()
}


class Keyring(Protocol):
    """Seals and opens the personal fields of one student's events with that student's key."""

    def seal(self, campaign: str, ine: str, aad: bytes, plaintext: bytes) -> str:
        """The sealed text of `plaintext`, bound to `aad`."""

    def open(self, campaign: str, ine: str, aad: bytes, sealed: str) -> bytes | None:
        """The plaintext, or None if the student's key was destroyed (erased)."""


class SealedWithoutKeys(RuntimeError):
    """A sealed entry was read by code that was given no keyring: a programming error."""


class ErasedKeyring:
    """Opens nothing: every sealed field reads as erased. For readers that never show personal data
    (`passpro audit verify`, the bonus), so they need no key."""

    def seal(self, campaign: str, ine: str, aad: bytes, plaintext: bytes) -> str:
        raise SealedWithoutKeys("the erased keyring cannot seal")

    def open(self, campaign: str, ine: str, aad: bytes, sealed: str) -> None:
        return None


def has_personal_fields(event_type: str) -> bool:
    return event_type in PERSONAL_FIELDS


def associated_data(event_id: str, event_type: str) -> bytes:
    """What a sealed text is bound to: it cannot be moved to another entry."""
    return f"{event_id}|{event_type}".encode()


def split_personal(event_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The payload without its personal fields (taken out of `payload` itself, a fresh dict), and
    those fields by dotted path."""
    clear = payload
    personal: dict[str, Any] = {}
    for path, parents, leaf in _SPLIT_PATHS.get(event_type, ()):
        node = clear
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            personal[path] = node.pop(leaf)
    return clear, personal


def merge_personal(event_type: str, clear: dict[str, Any], personal: dict[str, Any] | None) -> dict[str, Any]:
    """The whole payload again (put back into `clear` itself, a fresh dict); `personal` None (key
    destroyed) puts ERASED in every personal field."""
    payload = clear
    for path, parents, leaf in _SPLIT_PATHS.get(event_type, ()):
        node = payload
        for name in parents:
            node = node.setdefault(name, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[leaf] = ERASED if personal is None else personal.get(path, ERASED)
    return payload
