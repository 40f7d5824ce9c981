"""Moving an interview (InterviewRescheduled) carries the collège's room with the booking's rules (SPEC §6): a
distanciel free time needs one (422 room_missing), a présentiel move takes none (422 room_not_for_presentiel),
nothing stored on refusal; the student file keeps the move's room, shown on the student's pages like the booking's."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from test_student_pages import COLLEGE, FORMATION, INE, LYCEE, Browser, code_for, register


def _at(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_a_move_takes_a_room_with_the_bookings_rules_and_the_pages_show_it(passpro, registration):
    register(passpro, registration)
    referent = passpro.auth("referent", COLLEGE)
    booked = registration.post(f"/api/students/{INE}/interviews", headers=referent, json={
        "lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "distanciel", "remote_equipment_ready": True,
        "scheduled_at": _at(7), "room": "Salle 204"})
    assert booked.status_code == 201, booked.text
    interview_id = booked.json()["event"]["payload"]["interview_id"]
    url = f"/api/students/{INE}/interviews/reschedule"
    move = {"lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": _at(8), "mode": "distanciel"}
    before = passpro.snapshot()
    for sent, code in ((move, "room_missing"), ({**move, "room": "   "}, "invalid_input"),
                       ({**move, "mode": "presentiel", "room": "Salle 12"}, "room_not_for_presentiel")):
        refused = registration.post(url, json=sent, headers=referent)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == code
        [field] = refused.json()["fields"]
        assert field["field"] == "room" and field["message"], refused.json()
        assert passpro.snapshot() == before  # nothing stored
    moved = registration.post(url, json={**move, "room": "CDI (rez-de-chaussée)"}, headers=referent)
    assert moved.status_code == 201, moved.text
    assert moved.json()["event"]["payload"]["room"] == "CDI (rez-de-chaussée)"
    student = {"Authorization": f"Bearer {passpro.token('eleve', COLLEGE, ine=INE)}"}
    at = {"min_position": moved.json()["positions"]["service"]}
    [interview] = registration.get("/api/me", headers=student, params=at).json()["interviews"]
    assert "CDI (rez-de-chaussée)" in interview["room"] and "Salle 204" not in interview["room"]
    browser = Browser(registration)
    browser.sign_in(INE, code_for(passpro, registration))
    for path in ("/eleve", f"/eleve/entretiens/{interview_id}", f"/eleve/entretiens/{interview_id}/convocation"):
        page = html.unescape(browser.get(f"{path}?position={at['min_position']}").text)
        assert "CDI (rez-de-chaussée)" in page and "Salle 204" not in page, path
    # Moved to présentiel: the collège's room no longer applies.
    presentiel = registration.post(url, json={**move, "scheduled_at": _at(9), "mode": "presentiel"}, headers=referent)
    assert presentiel.status_code == 201, presentiel.text
    at = {"min_position": presentiel.json()["positions"]["service"]}
    [interview] = registration.get("/api/me", headers=student, params=at).json()["interviews"]
    assert interview["room"] is None and interview["mode"] == "presentiel"  # présentiel: at the lycée
