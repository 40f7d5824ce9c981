"""A slot's place (InterviewSlotOpened.place: the room at the lycée, or how the video link is given, SPEC §7)
reaches the student: GET /api/me's interview `slot_place` (null for a free time), the student's interview page and
the convocation (the shared block eleve/_lieu.html), read from registration's view table `slots`."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from test_student_pages import COLLEGE, FORMATION, INE, LYCEE, Browser, code_for, register

PLACE = "Salle B12 (bâtiment C, 1er étage)"
START = (datetime.now(UTC) + timedelta(days=10)).replace(hour=13, minute=0, second=0, microsecond=0)


def _slot(passpro, evaluation, starts_at: datetime, mode: str, place: str) -> str:
    opened = evaluation.post("/api/slots", headers=passpro.auth("lycee_staff", LYCEE), json={
        "lycee_uai": LYCEE, "formation_code": FORMATION, "starts_at": starts_at.isoformat(), "duration_minutes": 30,
        "capacity": 2, "mode": mode, "place": place})
    assert opened.status_code == 201, opened.text
    return opened.json()["event"]["payload"]["slot_id"]


def test_the_slots_place_reaches_the_students_answer_page_and_convocation(passpro, registration, evaluation):
    register(passpro, registration)
    referent = passpro.auth("referent", COLLEGE)
    slot_id = _slot(passpro, evaluation, START, "presentiel", PLACE)
    booked = registration.post(f"/api/students/{INE}/interviews", json={"slot_id": slot_id}, headers=referent)
    assert booked.status_code == 201, booked.text
    interview_id = booked.json()["event"]["payload"]["interview_id"]
    student = {"Authorization": f"Bearer {passpro.token('eleve', COLLEGE, ine=INE)}"}
    at = booked.json()["positions"]["service"]
    [interview] = registration.get("/api/me", headers=student, params={"min_position": at}).json()["interviews"]
    assert interview["slot_place"] == PLACE
    browser = Browser(registration)
    browser.sign_in(INE, code_for(passpro, registration))
    for path in (f"/eleve/entretiens/{interview_id}", f"/eleve/entretiens/{interview_id}/convocation"):
        page = html.unescape(browser.get(f"{path}?position={at}").text)
        assert PLACE in page and "Salle au lycée" in page, path
    # Moved to a free time: no slot, no slot place.
    moved = registration.post(f"/api/students/{INE}/interviews/reschedule", headers=referent, json={
        "lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": (START + timedelta(days=2)).isoformat(),
        "mode": "presentiel"})
    assert moved.status_code == 201, moved.text
    at = moved.json()["positions"]["service"]
    [interview] = registration.get("/api/me", headers=student, params={"min_position": at}).json()["interviews"]
    assert interview["slot_place"] is None
    page = html.unescape(browser.get(f"/eleve/entretiens/{interview_id}/convocation?position={at}").text)
    assert PLACE not in page and "Salle au lycée" not in page


def test_a_distanciel_slots_place_says_how_the_link_is_given(passpro, registration, evaluation):
    register(passpro, registration)
    how = "Le lien de la visioconférence est envoyé par courriel la veille"
    slot_id = _slot(passpro, evaluation, START, "distanciel", how)
    booked = registration.post(f"/api/students/{INE}/interviews", headers=passpro.auth("referent", COLLEGE),
                               json={"slot_id": slot_id, "remote_equipment_ready": True})
    assert booked.status_code == 201, booked.text
    interview_id, at = booked.json()["event"]["payload"]["interview_id"], booked.json()["positions"]["service"]
    student = {"Authorization": f"Bearer {passpro.token('eleve', COLLEGE, ine=INE)}"}
    [interview] = registration.get("/api/me", headers=student, params={"min_position": at}).json()["interviews"]
    assert interview["slot_place"] == how and interview["mode"] == "distanciel"
    browser = Browser(registration)
    browser.sign_in(INE, code_for(passpro, registration))
    page = html.unescape(browser.get(f"/eleve/entretiens/{interview_id}/convocation?position={at}").text)
    assert how in page and "Lien de l'entretien" in page
