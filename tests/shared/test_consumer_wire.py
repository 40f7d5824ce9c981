"""The consumer's compiled reader of log entries (shared/runtime/projection/wire.py) returns exactly what the
reference (`logged_event_from_entry`) returns, and refuses exactly what it refuses, with the same reason:
on every event type, sealed and in clear, and on entries changed in ways the reference reads (normalising
them) or refuses; from the fields as text and from the bytes Redis sends (what the consumer reads), the
reference then reading them decoded."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contracts.events import PAYLOAD_TYPES, event_to_fields
from shared.contracts.personal import ERASED, SEALED, associated_data
from shared.contracts.streams import logged_event_from_entry
from shared.runtime.keys.crypto import StudentKeys, new_key
from shared.runtime.projection.wire import WireReader, decoded_fields

from event_factories import CAMPAIGN, INE, make_event, sample_payloads

KEYS = StudentKeys({(CAMPAIGN, INE): new_key()})
ERASED_KEYS = StudentKeys({(CAMPAIGN, INE): None})


def entry(event_type: str, keyring=KEYS) -> dict[str, str]:
    """An entry as the append script stores it: the event's fields (sealed with `keyring`) and the log's own."""
    fields = event_to_fields(make_event(sample_payloads()[event_type]), keyring)
    return {**fields, "recorded_at": "2027-01-05T09:30:00.123456+00:00", "student_version": "3",
            "prev_hash": "0" * 40, "hash": "1" * 40}


def outcome(read: Callable, fields: dict[str, str], keyring) -> tuple:
    try:
        logged = read("s", "1-0", fields, keyring)
    except Exception as exc:  # noqa: BLE001 - the outcome compared is the exception's kind and message
        return ("raised", type(exc), str(exc))
    event = logged.event
    return ("read", logged, event.model_dump_json(), event.model_fields_set, event.payload.model_fields_set,
            event.actor.model_fields_set, [type(getattr(event, f)) for f in type(event).model_fields],
            [type(getattr(event.payload, f)) for f in type(event.payload).model_fields],
            repr(event.occurred_at), repr(event.recorded_at), repr(event.payload))  # dates' tzinfo included


def as_sent(fields: dict[str, str]) -> dict[bytes, bytes]:
    """The entry as a client that does not decode replies gets it (what Redis holds: the text in UTF-8)."""
    return {k.encode("utf-8", "surrogateescape"): v.encode("utf-8", "surrogateescape") for k, v in fields.items()}


def same_as_reference(fields: dict[str, str], keyring=KEYS) -> WireReader:
    """Read from text by one reader, from bytes by another: each as the reference reads the text. Returns the
    reader of bytes (the consumer's), whose counts say which path read the entry; both took the same path."""
    wire, raw = WireReader(), WireReader()
    expected = outcome(logged_event_from_entry, fields, keyring)
    assert outcome(wire.logged, fields, keyring) == expected
    assert outcome(lambda s, i, f, k: raw.logged_raw(s, i, as_sent(f), k), fields, keyring) == expected
    assert (raw.fast, raw.reference) == (wire.fast, wire.reference)
    return raw


# The events of the scheme's every student: each must be read by a compiled schema (the catch-up's speed).
# Others may be left to the reference (a field validator the compiler does not know, e.g. the letter's answers).
COMPILED = {
    "CampaignOpened", "StudentRegistered", "ReferentReassigned", "InterviewScheduled", "InterviewCancelled",
    "CollegeAvisGiven", "StudentWithdrawn", "StudentReinstated", "InterviewHeld", "LyceeAvisGiven", "StudentForgotten",
}


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed", "clear"])
@pytest.mark.parametrize("event_type", sorted(PAYLOAD_TYPES))
def test_every_event_type_is_read_as_the_reference_reads_it_those_of_the_scheme_by_a_compiled_schema(event_type, sealed):
    fields = entry(event_type, KEYS if sealed else None)
    wire = same_as_reference(fields, KEYS)
    if event_type in COMPILED:
        assert (wire.fast, wire.reference) == (1, 0), f"{event_type}: not read by a compiled schema"


@pytest.mark.parametrize("event_type", ["StudentRegistered", "ReferentReassigned", "InterviewHeld"])
def test_an_erased_students_entries_read_erased_through_the_compiled_schema(event_type):
    wire = same_as_reference(entry(event_type), ERASED_KEYS)
    assert wire.fast == 1
    assert ERASED in wire.logged_raw("s", "1-0", as_sent(entry(event_type)), ERASED_KEYS).event.payload.model_dump_json()


def _payload_change(change: Callable[[dict], None]) -> Callable[[dict[str, str]], None]:
    def apply(fields: dict[str, str]) -> None:
        payload = json.loads(fields["payload"])
        change(payload)
        fields["payload"] = json.dumps(payload)
    return apply


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


# (event type, how the entry is changed): each is read (normalised) or refused by the reference.
CHANGES = {
    "lower-case uai (normalised)": ("LyceeAvisGiven", _payload_change(lambda p: p.update(lycee_uai=p["lycee_uai"].lower()))),
    "spaced uai (normalised)": ("LyceeAvisGiven", _payload_change(lambda p: p.update(lycee_uai=" " + p["lycee_uai"] + " "))),
    "uai with a wrong letter": ("LyceeAvisGiven", _payload_change(lambda p: p.update(lycee_uai=p["lycee_uai"][:7] + "A"))),
    "uai as a number": ("LyceeAvisGiven", _payload_change(lambda p: p.update(lycee_uai=750502))),
    "unknown payload field": ("LyceeAvisGiven", _payload_change(lambda p: p.update(extra=1))),
    "missing payload field": ("LyceeAvisGiven", _payload_change(lambda p: p.pop("avis"))),
    "avis not in the list": ("LyceeAvisGiven", _payload_change(lambda p: p.update(avis="Favorable"))),
    "payload not JSON": ("LyceeAvisGiven", _set("payload", "{not json")),
    "actor not JSON": ("LyceeAvisGiven", _set("actor", "[")),
    "actor with an unknown role": ("LyceeAvisGiven", _set("actor", '{"user_id":"x","role":"chef"}')),
    "actor's id with spaces (trimmed)": ("LyceeAvisGiven", _set("actor", '{"user_id":" x ","role":"proviseur"}')),
    "event id not a UUID": ("LyceeAvisGiven", _set("event_id", "123")),
    "naive date": ("LyceeAvisGiven", _set("occurred_at", "2027-01-05T09:30:00")),
    "date in Paris time (to UTC)": ("LyceeAvisGiven", _set("occurred_at", "2027-01-05T10:30:00+01:00")),
    "date as a timestamp": ("LyceeAvisGiven", _set("occurred_at", "1800000000")),
    **{f"date {when!r}": ("LyceeAvisGiven", _set("occurred_at", when)) for when in (
        "2027-01-05T09:30:00Z", "2027-01-05T09:30:00+00:00", "2027-01-05T09:30:00.1Z", "2027-01-05T09:30:00.123456Z",
        "2027-01-05T09:30:00.1234567Z", "2027-01-05T09:30Z", "2027-01-05 09:30:00Z", "2027-01-05t09:30:00z",
        "2027-01-05T23:59:60Z", "2027-02-30T09:30:00Z", "2027-01-05T24:00:00Z", "0000-01-05T09:30:00Z",
        "2027-01-05T09:30:00-00:00", "2027-01-05T09:30:00+0000", "2027-01-05T09:30:00.Z", "２０２７-01-05T09:30:00Z",
    )},
    "payload date with a fraction": ("InterviewScheduled", _payload_change(lambda p: p.update(scheduled_at="2027-03-10T13:00:00.5Z"))),
    "payload date in Paris time": ("InterviewScheduled", _payload_change(lambda p: p.update(scheduled_at="2027-03-10T14:00:00+01:00"))),
    "lower-case campaign-less ine (normalised)": ("LyceeAvisGiven", _set("student_ine", INE.lower())),
    "bad ine": ("LyceeAvisGiven", _set("student_ine", "12345")),
    "no student": ("LyceeAvisGiven", _set("student_ine", "")),
    "version written ' 1'": ("LyceeAvisGiven", _set("schema_version", " 1")),
    "newer version": ("LyceeAvisGiven", _set("schema_version", "9")),
    "no version": ("LyceeAvisGiven", lambda f: f.pop("schema_version")),
    "no event id": ("LyceeAvisGiven", lambda f: f.pop("event_id")),
    "unknown type": ("LyceeAvisGiven", _set("event_type", "Nouveau")),
    "v1 interview (upcast)": ("InterviewScheduled", _set("schema_version", "1")),
    "bool as a string": ("InterviewScheduled", _payload_change(lambda p: p.update(remote_equipment_ready="true"))),
    "bool as 1": ("InterviewScheduled", _payload_change(lambda p: p.update(remote_equipment_ready=1))),
    "points as a string": ("CampaignOpened", _payload_change(lambda p: p.update(bonus_points="2500"))),
    "points as a float": ("CampaignOpened", _payload_change(lambda p: p.update(bonus_points=2500.0))),
    "points as true": ("CampaignOpened", _payload_change(lambda p: p.update(bonus_points=True))),
    "points too many": ("CampaignOpened", _payload_change(lambda p: p.update(bonus_points=100_001))),
    "points missing (default)": ("CampaignOpened", _payload_change(lambda p: p.pop("bonus_points"))),
    "text too long": ("LyceeAvisGiven", _payload_change(lambda p: p.update(interview_id="x" * 65))),
    "text of spaces": ("LyceeAvisGiven", _payload_change(lambda p: p.update(interview_id="   "))),
    "text with a control character": ("LyceeAvisGiven", _payload_change(lambda p: p.update(interview_id="a\x07b"))),
    "text with a lone surrogate": ("LyceeAvisGiven", _set("payload", '{"interview_id":"\\ud800"}')),
    "payload with NaN": ("CampaignOpened", _set("payload", '{"bonus_points":NaN}')),
    "sealed fields that do not open": ("StudentRegistered", lambda f: f.update({SEALED: f[SEALED][:-4] + "AAAA"})),
    "email erased in clear": ("ReferentReassigned", _set("payload", json.dumps({"referent": {"user_id": "r", "name": "N", "email": ERASED}}))),
    "email with spaces (trimmed)": ("ReferentReassigned", _set("payload", json.dumps({"referent": {"user_id": "r", "name": "N", "email": " a@b.fr "}}))),
    "not an email": ("ReferentReassigned", _set("payload", json.dumps({"referent": {"user_id": "r", "name": "N", "email": "ab.fr"}}))),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_changed_entry_is_read_or_refused_as_the_reference_does(name):
    event_type, change = CHANGES[name]
    fields = entry(event_type, KEYS if event_type == "StudentRegistered" else None)
    change(fields)
    same_as_reference(fields)


def test_a_sealed_entry_read_without_keys_raises_as_the_reference_does():
    same_as_reference(entry("StudentRegistered"), None)


# Changes only bytes can carry (what Redis holds is not always UTF-8), and sealed texts the reference reads oddly.
RAW_CHANGES = {
    "payload not UTF-8": ("LyceeAvisGiven", {b"payload": b'{"interview_id":"\xff"}'}),
    "ine not UTF-8": ("LyceeAvisGiven", {b"student_ine": b"\xff00000000BN"}),
    "campaign not UTF-8 (sealed)": ("StudentRegistered", {b"campaign": b"20\xe927"}),
    "sealed text not UTF-8": ("StudentRegistered", {SEALED.encode(): b"v1:\xff"}),
    "event type not UTF-8": ("LyceeAvisGiven", {b"event_type": b"Lyc\xe9e"}),
    "hash not UTF-8": ("LyceeAvisGiven", {b"hash": b"\xff"}),
    "a field name not UTF-8": ("LyceeAvisGiven", {b"\xffextra": b"1"}),  # a field no reader reads: read fast
}


@pytest.mark.parametrize("name", sorted(RAW_CHANGES))
def test_bytes_that_are_not_text_are_read_or_refused_as_the_reference_reads_them_decoded(name):
    event_type, change = RAW_CHANGES[name]
    raw = as_sent(entry(event_type, KEYS if event_type == "StudentRegistered" else None)) | change
    fields = decoded_fields(raw)  # what the consumer hands the reference, and the dead letters keep
    wire = WireReader()
    assert outcome(lambda s, i, f, k: wire.logged_raw(s, i, raw, k), fields, KEYS) == outcome(logged_event_from_entry, fields, KEYS)
    assert wire.fast == (name == "a field name not UTF-8")


PLAINS = {  # sealed personal fields the writer would not write, each read (or refused) by the reference
    "a field left out (erased)": {"last_name": "A", "first_name": "B", "class_name": "3e A", "referent.name": "R"},
    "a field more (ignored)": {"last_name": "A", "first_name": "B", "class_name": "3e A", "referent.name": "R",
                               "referent.email": "r@b.fr", "other": "x"},
    "a key twice": '{"last_name":"A","last_name":"Z","first_name":"B","class_name":"3e A","referent.name":"R","referent.email":"r@b.fr"}',
    "not an object": "[1, 2]",
    "NaN": '{"last_name":NaN}',
    "a lone surrogate": '{"last_name":"\\ud800","first_name":"B","class_name":"3e A","referent.name":"R","referent.email":"r@b.fr"}',
}


@pytest.mark.parametrize("name", sorted(PLAINS))
def test_sealed_fields_written_oddly_are_read_or_refused_as_the_reference_does(name):
    plain = PLAINS[name] if isinstance(PLAINS[name], str) else json.dumps(PLAINS[name])
    fields = entry("StudentRegistered", None)
    payload = json.loads(fields["payload"])
    for path in ("last_name", "first_name", "class_name"):
        payload.pop(path)
    payload["referent"] = {"user_id": payload["referent"]["user_id"]}
    fields["payload"] = json.dumps(payload)
    fields[SEALED] = KEYS.seal(CAMPAIGN, INE, associated_data(fields["event_id"], "StudentRegistered"), plain.encode())
    same_as_reference(fields)


TEXT = st.text(st.characters(codec="utf-8"), max_size=8) | st.sampled_from(
    [" a", "a ", "\u00a0a", "a\u2003", "a\u3000", "\x1ca", "a\x85", "a\nb", "\tx", "é", ERASED, "a" * 64, "a" * 65]
)


@settings(max_examples=300, deadline=None)
@given(interview_id=TEXT, uai=st.text("0123456789ABDNLWZabn ", max_size=10), email=TEXT)
def test_any_text_or_identifier_is_read_or_refused_as_the_reference_does(interview_id, uai, email):
    fields = entry("LyceeAvisGiven", None)
    payload = json.loads(fields["payload"])
    fields["payload"] = json.dumps({**payload, "interview_id": interview_id, "lycee_uai": uai})
    same_as_reference(fields)
    reassigned = entry("ReferentReassigned", None)
    reassigned["payload"] = json.dumps({"referent": {"user_id": interview_id, "name": "N", "email": email}})
    same_as_reference(reassigned)
