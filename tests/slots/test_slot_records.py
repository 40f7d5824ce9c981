"""The slots' events in the log's other readers (issue 15): every v1 InterviewScheduled still reads (slot_id
None, through its upcaster), and the audit reads every new event — `passpro audit verify` finds the chains,
the student streams and the event index whole after slots, bookings, moves, cancellations and corrections,
and a slot's copy of an entry is the service stream's, field for field."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "records"))

from audited import CAMPAIGN, close, make_audited  # noqa: E402
from event_factories import (  # noqa: E402
    INTERVIEW_ID, LYCEE_STAFF, PRINCIPAL, REFERENT_ACTOR, REPORT, FORMATION, LYCEE, SLOT_ID, held, make_event,
    registered, sample_payloads, scheduled, slot_opened,
)
from services.records.timeline import describe  # noqa: E402
from shared.contracts.events import (  # noqa: E402
    InterviewReportCorrected, InterviewScheduled, event_from_fields, event_to_fields,
)
from shared.contracts.streams import HASH  # noqa: E402
from shared.fr.labels import EVENT_LABELS  # noqa: E402
from shared.runtime.log.client import EventLog, entry_hash  # noqa: E402


def test_a_v1_interview_scheduled_reads_as_v2_with_no_slot():
    fields = event_to_fields(make_event(scheduled()))
    payload = json.loads(fields["payload"])
    del payload["slot_id"]
    v1 = fields | {"schema_version": "1", "payload": json.dumps(payload)}
    event = event_from_fields(v1)
    assert event.schema_version == InterviewScheduled.SCHEMA_VERSION == 2
    assert event.payload.slot_id is None and event.payload.interview_id == INTERVIEW_ID


@pytest.mark.parametrize("event_type", ["InterviewSlotOpened", "InterviewSlotClosed", "InterviewRescheduled",
                                        "InterviewReportCorrected"])
def test_each_new_event_has_its_label_and_its_timeline_lines(event_type: str):
    event = make_event(sample_payloads()[event_type], ine=None if "Slot" in event_type else "123456789AB")
    assert EVENT_LABELS[event_type] and describe(event)


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path):
    w = make_audited(redis_url, academie, f"sqlite:///{tmp_path / 'scoring.sqlite3'}", None, tmp_path)
    yield w
    close(w)


def test_audit_verify_reads_slots_bookings_moves_and_corrections_and_finds_the_log_whole(world):
    world.open_campaign()
    slot_key = world.keys.slot(CAMPAIGN, SLOT_ID)

    async def write(r) -> None:
        log = EventLog(r, world.keys)
        assert (await log.append(make_event(slot_opened(), ine=None, actor=LYCEE_STAFF), "evaluation", 0, "f")).status == "ok"
        ine = "000000001SL"
        steps = [
            ("registration", registered(), PRINCIPAL, {}),
            ("registration", scheduled().model_copy(update={"slot_id": SLOT_ID}), REFERENT_ACTOR, {slot_key: 1}),
            ("evaluation", held(), LYCEE_STAFF, {}),
            ("evaluation", InterviewReportCorrected(interview_id=INTERVIEW_ID, lycee_uai=LYCEE,
                                                    formation_code=FORMATION, report=REPORT), LYCEE_STAFF, {}),
        ]
        for version, (service, payload, actor, more) in enumerate(steps):
            appended = await log.append(make_event(payload, actor=actor, ine=ine), service, version, "f", more)
            assert appended.status == "ok", appended
        closed = sample_payloads()["InterviewSlotClosed"]
        assert (await log.append(make_event(closed, ine=None, actor=LYCEE_STAFF), "evaluation", 2, "f")).status == "ok"

    world.run(write)
    world.catch_up()
    report = world.verify(key=None)
    assert report.differences == [], report.differences
    # The slot's stream holds the same entries as evaluation's and registration's, hash for hash.
    service_hashes = {f[HASH] for key in (world.stream("registration"), world.stream("evaluation"))
                      for _, f in world.redis.xrange(key)}
    slot_entries = world.redis.xrange(slot_key)
    assert [f["event_type"] for _, f in slot_entries] == ["InterviewSlotOpened", "InterviewScheduled", "InterviewSlotClosed"]
    assert all(f[HASH] in service_hashes and entry_hash(f) == f[HASH] for _, f in slot_entries)
