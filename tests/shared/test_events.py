"""SPEC §3: events survive the log's plain-field format, older versions are upcast, bad entries are named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts import events as events_module
from shared.contracts.events import (
    PAYLOAD_TYPES,
    CampaignOpened,
    Event,
    StudentWithdrawn,
    UnknownEventType,
    UnreadableEntry,
    event_from_fields,
    event_to_fields,
    upcaster,
)

from event_factories import INE, make_event, registered, sample_payloads

ENTRY_FIELDS = {
    "event_id",
    "event_type",
    "schema_version",
    "student_ine",
    "campaign",
    "occurred_at",
    "actor",
    "payload",
}


def test_there_is_a_sample_of_every_event_type() -> None:
    assert set(sample_payloads()) == set(PAYLOAD_TYPES)


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_TYPES))
def test_every_event_type_round_trips_through_the_plain_entry_fields(event_type: str) -> None:
    event = make_event(sample_payloads()[event_type])
    fields = event_to_fields(event)

    assert set(fields) == ENTRY_FIELDS
    assert all(isinstance(v, str) for v in fields.values())
    assert fields["event_type"] == event_type
    assert fields["schema_version"] == str(PAYLOAD_TYPES[event_type].SCHEMA_VERSION)
    json.loads(fields["actor"]), json.loads(fields["payload"])  # readable JSON for redis-cli users

    back = event_from_fields(fields)
    assert back == event
    assert type(back.payload) is PAYLOAD_TYPES[event_type]


def test_a_campaign_event_names_no_student() -> None:
    event = make_event(CampaignOpened())
    fields = event_to_fields(event)
    assert fields["student_ine"] == ""
    assert event_from_fields(fields).student_ine is None


def test_the_envelope_takes_its_wire_name_and_version_from_the_payload() -> None:
    event = make_event(registered())
    assert event.event_type == "StudentRegistered"
    assert event.schema_version == 1


def test_times_are_stored_in_utc_whatever_offset_they_were_given_in() -> None:
    paris = timezone(timedelta(hours=2))
    event = make_event(registered(), occurred_at=datetime(2027, 4, 1, 10, 30, tzinfo=paris))
    assert event.occurred_at == datetime(2027, 4, 1, 8, 30, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event_to_fields(event)["occurred_at"].endswith("+00:00")


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError):
        make_event(registered(), occurred_at=datetime(2027, 4, 1, 10, 30))


def test_the_student_ine_of_an_event_is_normalised() -> None:
    assert make_event(registered(), ine=INE.lower()).student_ine == INE


def test_events_are_immutable() -> None:
    event = make_event(registered())
    with pytest.raises(ValidationError):
        event.campaign = "2028"  # type: ignore[misc]


def test_a_payload_with_an_unknown_field_is_refused() -> None:
    fields = event_to_fields(make_event(registered()))
    payload = json.loads(fields["payload"]) | {"surprise": 1}
    with pytest.raises(UnreadableEntry):
        event_from_fields(fields | {"payload": json.dumps(payload)})


# --- upcasting ------------------------------------------------------------------------


@pytest.fixture
def withdrawal_at_version_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the code moved StudentWithdrawn to v2 (v1 called the reason `motif`); undone after the test."""
    monkeypatch.setattr(events_module, "UPCASTERS", dict(events_module.UPCASTERS))
    monkeypatch.setattr(StudentWithdrawn, "SCHEMA_VERSION", 2)

    @upcaster("StudentWithdrawn", 1)
    def _motif_becomes_reason(payload: dict[str, Any]) -> dict[str, Any]:
        payload = dict(payload)
        payload["reason"] = payload.pop("motif")
        return payload


def _v1_withdrawal_fields() -> dict[str, str]:
    fields = event_to_fields(make_event(StudentWithdrawn(reason="placeholder")))
    return fields | {"schema_version": "1", "payload": json.dumps({"motif": "Déménagement"})}


def test_an_entry_of_an_older_schema_version_is_upcast_before_validation(withdrawal_at_version_2: None) -> None:
    event = event_from_fields(_v1_withdrawal_fields())
    assert event.schema_version == 2
    assert event.payload == StudentWithdrawn(reason="Déménagement")


def test_the_temporary_upcaster_is_gone_after_its_test() -> None:
    assert ("StudentWithdrawn", 1) not in events_module.UPCASTERS
    assert StudentWithdrawn.SCHEMA_VERSION == 1


def test_an_older_version_without_an_upcaster_is_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StudentWithdrawn, "SCHEMA_VERSION", 2)
    with pytest.raises(UnreadableEntry):
        event_from_fields(_v1_withdrawal_fields())


def test_a_version_newer_than_the_code_is_unreadable() -> None:
    fields = event_to_fields(make_event(registered()))
    with pytest.raises(UnreadableEntry):
        event_from_fields(fields | {"schema_version": "2"})


# --- entries that are not events ------------------------------------------------------


def test_an_unknown_event_type_raises_unknown_event_type() -> None:
    fields = event_to_fields(make_event(registered()))
    with pytest.raises(UnknownEventType):
        event_from_fields(fields | {"event_type": "StudentTeleported"})


@pytest.mark.parametrize(
    "damage",
    [
        {"payload": "{not json"},
        {"actor": "not json either"},
        {"payload": "[]"},
        {"schema_version": "one"},
        {"occurred_at": "yesterday"},
        {"event_id": "not-a-uuid"},
        {"campaign": "27"},
    ],
    ids=["bad-payload-json", "bad-actor-json", "payload-not-object", "bad-version", "bad-time", "bad-id", "bad-campaign"],
)
def test_an_entry_that_cannot_be_read_raises_unreadable_entry(damage: dict[str, str]) -> None:
    fields = event_to_fields(make_event(registered()))
    with pytest.raises(UnreadableEntry):
        event_from_fields(fields | damage)


@pytest.mark.parametrize("missing", ["event_type", "schema_version", "payload", "actor", "event_id"])
def test_an_entry_missing_a_field_raises_unreadable_entry(missing: str) -> None:
    fields = event_to_fields(make_event(registered()))
    del fields[missing]
    with pytest.raises(UnreadableEntry):
        event_from_fields(fields)


def test_a_payload_with_an_invalid_identifier_is_unreadable() -> None:
    fields = event_to_fields(make_event(registered()))
    payload = json.loads(fields["payload"]) | {"college_uai": "0752547A"}  # wrong check letter
    with pytest.raises(UnreadableEntry):
        event_from_fields(fields | {"payload": json.dumps(payload)})


def test_an_event_is_its_own_type_not_a_python_path() -> None:
    for name, cls in PAYLOAD_TYPES.items():
        assert "." not in name and cls.EVENT_TYPE == name
    assert isinstance(make_event(registered()), Event)
