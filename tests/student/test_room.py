"""Distanciel (SPEC §6): the student follows the interview from a room of their collège, given when it is
scheduled (InterviewScheduled.room, optional in v2, absent from v1): required for a distanciel free time (422 in
French, nothing stored), refused for a présentiel one, shown on the student's pages and the convocation; a v1
event still reads (no room: the référent tells which one)."""

from __future__ import annotations

from event_factories import YEAR  # the year of the campaign to come (2027 until its rentrée)
import html
from datetime import UTC, datetime, timedelta

from test_student_pages import COLLEGE, FORMATION, INE, LYCEE, Browser, code_for, register

from shared.contracts.events import InterviewScheduled


def body(**changes) -> dict:
    return {"lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "distanciel", "remote_equipment_ready": True,
            "scheduled_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(), **changes}


def test_a_distanciel_free_time_needs_the_room_and_a_presentiel_one_takes_none(passpro, registration):
    register(passpro, registration)
    url, referent = f"/api/students/{INE}/interviews", passpro.auth("referent", COLLEGE)
    before = passpro.snapshot()
    for sent, code in ((body(), "room_missing"), (body(room="   "), "invalid_input"),
                       (body(mode="presentiel", remote_equipment_ready=False, room="Salle 204"),
                        "room_not_for_presentiel")):
        refused = registration.post(url, json=sent, headers=referent)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == code
        [field] = refused.json()["fields"]
        assert field["field"] == "room" and field["message"], refused.json()
        assert code == "invalid_input" or "salle" in refused.json()["message"].lower(), refused.json()
        assert passpro.snapshot() == before  # nothing stored
    scheduled = registration.post(url, json=body(room="Salle 204 (2e étage)"), headers=referent)
    assert scheduled.status_code == 201, scheduled.text
    assert scheduled.json()["event"]["payload"]["room"] == "Salle 204 (2e étage)"
    assert scheduled.json()["event"]["schema_version"] == 2


def test_the_room_is_on_the_students_pages_and_the_convocation(passpro, registration):
    register(passpro, registration)
    scheduled = registration.post(f"/api/students/{INE}/interviews", json=body(room="Salle 204 (2e étage)"),
                                  headers=passpro.auth("referent", COLLEGE))
    assert scheduled.status_code == 201, scheduled.text
    interview_id = scheduled.json()["event"]["payload"]["interview_id"]
    browser = Browser(registration)
    browser.sign_in(INE, code_for(passpro, registration))
    for path in ("/eleve", f"/eleve/entretiens/{interview_id}", f"/eleve/entretiens/{interview_id}/convocation"):
        page = html.unescape(browser.get(path).text)
        assert "Salle 204 (2e étage)" in page, path
    me = registration.get("/api/me", headers={"Authorization": f"Bearer {passpro.token('eleve', COLLEGE, ine=INE)}"})
    assert "Salle 204 (2e étage)" in me.json()["interviews"][0]["room"]


def test_a_v1_event_and_a_v2_event_without_room_read_with_no_room():
    at = datetime(YEAR, 5, 12, 12, 30, tzinfo=UTC)
    v1 = InterviewScheduled.model_validate({"interview_id": "i-1", "lycee_uai": LYCEE, "formation_code": FORMATION,
                                            "scheduled_at": at.isoformat(), "mode": "distanciel",
                                            "remote_equipment_ready": True})
    assert v1.room is None and v1.slot_id is None
