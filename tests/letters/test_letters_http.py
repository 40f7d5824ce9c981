"""The guided motivation letter and the preparation checklist over HTTP (SPEC §6): every rule and right, and
nothing stored on a refusal.

One world (three services in process, one académie) for the module; each test has students of its own.
"""

from __future__ import annotations

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
import html
import json

import pytest
from sqlalchemy import create_engine, text

from matrix import (  # noqa: F401  (world: the module's fixture)
    COLLEGE,
    FORMATION,
    LYCEE,
    OTHER_COLLEGE,
    OTHER_LYCEE,
    OTHER_LYCEE_FORMATION,
    OTHER_REFERENT,
    PRINCIPAL,
    REFERENT,
    STAFF,
    World,
    held_body,
    is_french,
    refusal_problems,
    world,
)
from shared.contracts.letter import default_letter_template
from shared.contracts.personal import SEALED

TEMPLATE = default_letter_template()
FULL = {q.id: f"Réponse à « {q.prompt} »" for q in TEMPLATE.questions}
VOEU = {"lycee_uai": LYCEE, "formation_code": FORMATION}


def student_headers(w: World, ine: str, college: str = COLLEGE) -> dict[str, str]:
    return {"Authorization": f"Bearer {w.passpro.token('eleve', college, user=f'eleve-{ine}', ine=ine)}"}


def as_student(w: World, ine: str, method: str, path: str, body: dict | None = None, **kwargs):
    client = w.clients["registration"]
    return client.request(method, path, json=body, headers=student_headers(w, ine), **kwargs)


def scheduled_student(w: World, situation: str = "scheduled") -> tuple[str, str]:
    """A new student of COLLEGE with an interview at LYCEE (held if asked): their INE and the interview id."""
    ine = w.prepare(situation)
    [interview] = [i for i in w.get("registration", "/api/students", PRINCIPAL,
                                    params={"min_position": last_position(w)}).json()["items"] if i["ine"] == ine]
    return ine, interview["interviews"][0]["interview_id"]


def last_position(w: World) -> str:
    stream = w.passpro.service_stream("registration")
    evaluation = w.passpro.service_stream("evaluation")
    ids = [e[0].decode() for key in (stream, evaluation) for e in w.passpro.redis.xrevrange(key, count=1)]
    return max(ids, key=lambda i: tuple(map(int, i.split("-"))))


def refused(w: World, response, status: int, error: str, *, before: dict) -> dict:
    body = response.json()
    assert (response.status_code, body.get("error")) == (status, error), response.text
    assert refusal_problems(status, body) == []
    assert w.log_state() == before  # nothing stored
    return body


# --- the template -----------------------------------------------------------------------------------------


def test_the_template_is_served_to_every_signed_in_user_with_its_version(world: World):
    for headers in (student_headers(world, "000000001XX"), world.headers(REFERENT), world.headers(STAFF)):
        answer = world.clients["registration"].get("/api/letter-template", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == TEMPLATE.model_dump(mode="json")
    body = answer.json()
    assert body["version"] == 1
    assert [q["id"] for q in body["questions"]] == ["pourquoi", "recherches", "metier", "qualites", "trajet", "questions"]
    assert all(is_french(q["prompt"]) and is_french(q["help"]) and q["max_length"] > 0 for q in body["questions"])
    assert world.clients["registration"].get("/api/letter-template").status_code == 401


# --- the student's letter --------------------------------------------------------------------------------


def test_a_student_saves_their_letter_as_often_as_they_like_then_marks_it_ready(world: World):
    ine, _ = scheduled_student(world)
    first = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": {"pourquoi": "J'aime vendre."}})
    assert first.status_code == 201, first.text
    event = first.json()["event"]
    assert (event["event_type"], event["student_ine"]) == ("MotivationLetterSaved", ine)
    assert event["actor"] == {"user_id": f"eleve-{ine}", "role": "eleve", "uai": COLLEGE}
    assert event["payload"]["answers"] == {"pourquoi": "J'aime vendre."} and event["payload"]["ready"] is False

    second = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": FULL, "ready": True})
    assert second.status_code == 201, second.text
    mine = as_student(world, ine, "GET", "/api/me/letters",
                      params={"min_position": second.json()["positions"]["service"]}).json()
    [letter] = mine["letters"]
    assert (letter["answers"], letter["ready"], letter["template_version"]) == (FULL, True, 1)
    assert (letter["lycee_uai"], letter["formation_code"]) == (LYCEE, FORMATION)

    # Sealed in the log: the answers are not in the entry in clear.
    entries = world.passpro.redis.xrange(world.passpro.student_stream(ine))
    saved = [fields for _, fields in entries if fields[b"event_type"] == b"MotivationLetterSaved"]
    assert len(saved) == 2
    for fields in saved:
        assert SEALED.encode() in fields and b"vendre" not in b"".join(fields.values())
        assert "answers" not in json.loads(fields[b"payload"])


def test_the_same_save_again_with_its_event_id_is_answered_by_the_first(world: World):
    ine, _ = scheduled_student(world)
    body = {**VOEU, "answers": {"trajet": "Métro ligne 4."}, "event_id": "6a1f0a5e-9d55-4d0e-9a43-3f4f7f3b2c11"}
    first = as_student(world, ine, "POST", "/api/me/letters", body)
    before = world.log_state()
    again = as_student(world, ine, "POST", "/api/me/letters", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and world.log_state() == before


@pytest.mark.parametrize(
    ("answers", "ready", "error", "field"),
    [
        ({"inconnue": "Une réponse"}, False, "unknown_question", "answers.inconnue"),
        ({"trajet": "x" * 301}, False, "answer_too_long", "answers.trajet"),
        ({"Pourquoi!": "Une réponse"}, False, "invalid_input", "answers.Pourquoi!.[key]"),
        ({"pourquoi": "   "}, False, "invalid_input", "answers.pourquoi"),
        ({"pourquoi": "un\x00deux"}, False, "invalid_input", "answers.pourquoi"),
    ],
    ids=["unknown question", "over its length", "malformed id", "blank", "control char"],
)
def test_an_answer_outside_the_template_is_a_422_and_stores_nothing(world: World, answers, ready, error, field):
    ine, _ = scheduled_student(world)
    before = world.log_state()
    answer = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": answers, "ready": ready})
    body = refused(world, answer, 422, error, before=before)
    assert field in [f["field"] for f in body["fields"]], body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lycee_uai": OTHER_LYCEE, "formation_code": FORMATION}, "formation_code"),
        ({"lycee_uai": "0750502A", "formation_code": FORMATION}, "lycee_uai"),
        ({**VOEU, "ready": "yes"}, "ready"),
        ({**VOEU, "answers": ["pourquoi"]}, "answers"),
        ({**VOEU, "student_ine": "123456789AB"}, "student_ine"),
    ],
    ids=["formation not offered", "bad UAI", "ready not a boolean", "answers not an object", "names an INE"],
)
def test_a_malformed_letter_is_a_422_and_stores_nothing(world: World, body, field):
    ine, _ = scheduled_student(world)
    before = world.log_state()
    answer = as_student(world, ine, "POST", "/api/me/letters", {"answers": {}, **body})
    payload = refused(world, answer, 422, answer.json().get("error"), before=before)
    assert any(f["field"].startswith(field) for f in payload["fields"]), payload


def test_a_letter_needs_the_voeus_interview(world: World):
    ine = world.prepare("registered")
    before = world.log_state()
    answer = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": {"pourquoi": "J'aime vendre."}})
    body = refused(world, answer, 409, "no_interview_for_voeu", before=before)
    assert "entretien" in body["message"]

    # An interview at another vœu, or a cancelled one, is no interview for this vœu.
    world.ok("registration", f"/api/students/{ine}/interviews",
             {"lycee_uai": OTHER_LYCEE, "formation_code": OTHER_LYCEE_FORMATION,
              "scheduled_at": "2030-01-10T10:00:00+01:00", "mode": "presentiel"}, PRINCIPAL)
    world.ok("registration", f"/api/students/{ine}/interviews",
             {**VOEU, "scheduled_at": "2030-01-10T14:00:00+01:00", "mode": "presentiel"}, PRINCIPAL)
    world.ok("registration", f"/api/students/{ine}/interviews/cancel", {**VOEU, "reason": "reporte"}, PRINCIPAL)
    before = world.log_state()
    answer = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": {"pourquoi": "J'aime vendre."}})
    refused(world, answer, 409, "no_interview_for_voeu", before=before)


def test_a_letter_marked_ready_answers_every_question(world: World):
    ine, _ = scheduled_student(world)
    before = world.log_state()
    answer = as_student(world, ine, "POST", "/api/me/letters",
                        {**VOEU, "answers": {"pourquoi": "Seulement une réponse."}, "ready": True})
    refused(world, answer, 409, "letter_incomplete", before=before)


def test_a_letter_is_frozen_once_its_interview_is_held(world: World):
    ine, _ = scheduled_student(world)
    saved = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": FULL, "ready": True})
    assert saved.status_code == 201
    world.ok("evaluation", f"/api/students/{ine}/interviews/held", held_body(), STAFF)
    before = world.log_state()
    answer = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": {"pourquoi": "Autre chose."}})
    refused(world, answer, 409, "letter_after_interview", before=before)


def test_a_withdrawn_student_saves_no_letter(world: World):
    ine, _ = scheduled_student(world)
    world.ok("registration", f"/api/students/{ine}/withdrawal", {"reason": "Déménagement"}, PRINCIPAL)
    before = world.log_state()
    answer = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": {"pourquoi": "J'aime vendre."}})
    refused(world, answer, 409, "student_withdrawn", before=before)


def test_an_unregistered_student_or_another_colleges_reads_as_unknown(world: World):
    ine, _ = scheduled_student(world)
    before = world.log_state()
    stranger = world.fresh_ine()
    answer = as_student(world, stranger, "POST", "/api/me/letters", {**VOEU, "answers": {"pourquoi": "Bonjour."}})
    refused(world, answer, 404, "student_not_found", before=before)
    # The same INE in a token of another collège: not this student.
    client = world.clients["registration"]
    answer = client.post("/api/me/letters", json={**VOEU, "answers": {"pourquoi": "Bonjour."}},
                         headers=student_headers(world, ine, OTHER_COLLEGE))
    refused(world, answer, 404, "student_not_found", before=before)
    assert client.get("/api/me/letters", headers=student_headers(world, stranger)).status_code == 404


@pytest.mark.parametrize("caller", [PRINCIPAL, REFERENT, STAFF], ids=lambda c: c.label)
def test_staff_write_no_letter(world: World, caller):
    ine, _ = scheduled_student(world)
    before = world.log_state()
    answer = world.post("registration", "/api/me/letters", {**VOEU, "answers": {"pourquoi": "Bonjour."}}, caller)
    refused(world, answer, 403, "role_forbidden", before=before)
    assert world.get("registration", "/api/me/letters", caller).status_code == 403


# --- the preparation checklist ------------------------------------------------------------------------------


TICKS = {"itinerary_ready": True, "letter_printed": False, "materials_ready": True}


def test_the_student_and_the_referent_tick_the_checklist(world: World):
    ine, interview_id = scheduled_student(world)
    mine = as_student(world, ine, "POST", f"/api/me/interviews/{interview_id}/preparation",
                      {**TICKS, "equipment_ready": True})
    assert mine.status_code == 201, mine.text
    payload = mine.json()["event"]["payload"]
    assert payload == {"interview_id": interview_id, **TICKS, "equipment_ready": None}  # présentiel: no equipment
    assert mine.json()["event"]["actor"]["role"] == "eleve"

    staff = world.ok("registration", f"/api/students/{ine}/interviews/{interview_id}/preparation",
                     {**TICKS, "letter_printed": True}, REFERENT)
    assert staff["event"]["actor"]["role"] == "referent"
    letters = world.get("registration", f"/api/students/{ine}/letters", REFERENT,
                        params={"min_position": staff["positions"]["service"]}).json()
    [checklist] = letters["preparations"]
    assert (checklist["interview_id"], checklist["letter_printed"], checklist["ready"]) == (interview_id, True, True)
    assert checklist["updated_by_role"] == "referent"
    assert as_student(world, ine, "GET", "/api/me/letters").json()["preparations"] == [checklist]


def test_a_distanciel_interview_is_ready_only_with_the_equipment(world: World):
    ine = world.prepare("registered")
    scheduled = world.ok("registration", f"/api/students/{ine}/interviews",
                         {**VOEU, "scheduled_at": "2030-02-01T10:00:00+01:00", "mode": "distanciel",
                          "remote_equipment_ready": True, "room": "Salle 204"}, REFERENT)
    interview_id = scheduled["event"]["payload"]["interview_id"]
    everything = {"itinerary_ready": True, "letter_printed": True, "materials_ready": True}
    first = as_student(world, ine, "POST", f"/api/me/interviews/{interview_id}/preparation", everything).json()
    mine = as_student(world, ine, "GET", "/api/me/letters", params={"min_position": first["positions"]["service"]})
    assert mine.json()["preparations"][0]["equipment_ready"] is False
    assert mine.json()["preparations"][0]["ready"] is False
    done = as_student(world, ine, "POST", f"/api/me/interviews/{interview_id}/preparation",
                      {**everything, "equipment_ready": True}).json()
    mine = as_student(world, ine, "GET", "/api/me/letters", params={"min_position": done["positions"]["service"]})
    assert mine.json()["preparations"][0]["ready"] is True


def test_a_student_ticks_only_their_own_interviews(world: World):
    ine, _ = scheduled_student(world)
    other, others_interview = scheduled_student(world)
    before = world.log_state()
    answer = as_student(world, ine, "POST", f"/api/me/interviews/{others_interview}/preparation", TICKS)
    refused(world, answer, 404, "interview_not_found", before=before)
    answer = as_student(world, ine, "POST", "/api/me/interviews/no-such-interview/preparation", TICKS)
    refused(world, answer, 404, "interview_not_found", before=before)


def test_a_held_interview_s_checklist_no_longer_changes(world: World):
    ine, interview_id = scheduled_student(world, "held")
    before = world.log_state()
    answer = as_student(world, ine, "POST", f"/api/me/interviews/{interview_id}/preparation", TICKS)
    refused(world, answer, 409, "interview_not_scheduled", before=before)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"itinerary_ready": True, "letter_printed": False}, "materials_ready"),
     ({**TICKS, "itinerary_ready": "true"}, "itinerary_ready"),
     ({**TICKS, "other": True}, "other")],
    ids=["missing tick", "not a boolean", "unknown field"],
)
def test_a_malformed_checklist_is_a_422_and_stores_nothing(world: World, body, field):
    ine, interview_id = scheduled_student(world)
    before = world.log_state()
    answer = as_student(world, ine, "POST", f"/api/me/interviews/{interview_id}/preparation", body)
    payload = refused(world, answer, 422, "invalid_input", before=before)
    assert field in [f["field"] for f in payload["fields"]]


@pytest.mark.parametrize(
    ("caller", "status", "error"),
    [(OTHER_REFERENT, 404, "student_not_found"), (STAFF, 403, "role_forbidden")],
    ids=["referent of another collège", "lycée staff"],
)
def test_only_the_colleges_staff_tick_a_students_checklist(world: World, caller, status, error):
    ine, interview_id = scheduled_student(world)
    before = world.log_state()
    answer = world.post("registration", f"/api/students/{ine}/interviews/{interview_id}/preparation", TICKS, caller)
    refused(world, answer, status, error, before=before)


def test_a_student_is_refused_the_staff_checklist_route(world: World):
    ine, interview_id = scheduled_student(world)
    before = world.log_state()
    answer = as_student(world, ine, "POST", f"/api/students/{ine}/interviews/{interview_id}/preparation", TICKS)
    refused(world, answer, 403, "role_forbidden", before=before)


# --- the collège reads the letters, and the read is logged ----------------------------------------------------


def test_the_colleges_staff_read_the_letters_and_the_read_is_logged(world: World):
    ine, _ = scheduled_student(world)
    saved = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": {"metier": "Vendeur conseil."}})
    position = saved.json()["positions"]["service"]
    access_key = world.passpro.keys.access_log(CAMPAIGN, ine)
    logged = world.passpro.redis.xlen(access_key)
    for caller in (REFERENT, PRINCIPAL):
        answer = world.get("registration", f"/api/students/{ine}/letters", caller, params={"min_position": position})
        assert answer.status_code == 200, answer.text
        assert answer.json()["letters"][0]["answers"] == {"metier": "Vendeur conseil."}
    entries = world.passpro.redis.xrange(access_key)[logged:]
    assert [(e[b"role"], e[b"what"]) for _, e in entries] == [
        (b"referent", "lettres de motivation".encode()), (b"principal", "lettres de motivation".encode())]
    # The student reading their own letters is not a staff read: nothing logged.
    as_student(world, ine, "GET", "/api/me/letters")
    assert world.passpro.redis.xlen(access_key) == logged + 2

    for caller, status in ((OTHER_REFERENT, 404), (STAFF, 403)):
        assert world.get("registration", f"/api/students/{ine}/letters", caller).status_code == status


# --- the lycée reads a ready letter, never a draft ------------------------------------------------------------


def lycee_interview(w: World, ine: str, position: str) -> dict:
    answer = w.get("evaluation", "/api/interviews", STAFF, params={"min_position": position, "limit": 1000})
    assert answer.status_code == 200, answer.text
    return next(i for i in answer.json()["items"] if i["ine"] == ine)


def lycee_page(w: World, ine: str) -> str:
    cookie = f"passpro_evaluation={w.passpro.token(STAFF.role, STAFF.uai)}"
    answer = w.clients["evaluation"].get(f"/eleves/{ine}/{FORMATION}", headers={"Cookie": cookie})
    assert answer.status_code == 200, answer.text
    return html.unescape(answer.text)


def evaluation_rows(w: World, ine: str) -> str:
    engine = create_engine(w.passpro.database_url("evaluation"))
    try:
        with engine.connect() as conn:
            return " ".join(row[0] for row in conn.execute(text("SELECT file FROM student_files WHERE ine = :ine"),
                                                           {"ine": ine}))
    finally:
        engine.dispose()


def test_the_lycee_sees_the_letter_once_ready_and_never_holds_a_draft(world: World):
    ine, _ = scheduled_student(world)
    draft = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": {"pourquoi": "Brouillon zanzibar."}})
    assert lycee_interview(world, ine, draft.json()["positions"]["service"])["letter"] is None
    assert "pas encore marqué sa lettre" in lycee_page(world, ine) and "zanzibar" not in lycee_page(world, ine)
    assert "zanzibar" not in evaluation_rows(world, ine).lower()  # the lycée's view keeps no draft

    ready = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": FULL, "ready": True})
    assert lycee_interview(world, ine, ready.json()["positions"]["service"])["letter"] == FULL
    page = lycee_page(world, ine)
    assert "Lettre de motivation de l'élève" in page
    cookie = f"passpro_evaluation={world.passpro.token(STAFF.role, STAFF.uai)}"
    rows = world.clients["evaluation"].get("/", headers={"Cookie": cookie}, params={"page": 1}).text.split("<tr")
    [row] = [r for r in rows if f"/eleves/{ine}/{FORMATION}" in r]
    assert "Lettre de motivation prête" in row
    assert all(q.prompt in page and FULL[q.id] in page for q in TEMPLATE.questions)

    # Back to a draft: the lycée no longer sees it.
    again = as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": FULL, "ready": False})
    assert lycee_interview(world, ine, again.json()["positions"]["service"])["letter"] is None


def test_the_colleges_list_says_per_interview_whether_the_letter_is_ready_and_the_student_prepared(world: World):
    ine, interview_id = scheduled_student(world)

    def row(position: str) -> dict:
        items = world.get("registration", "/api/students", REFERENT,
                          params={"min_position": position, "limit": 1000}).json()["items"]
        [interview] = next(s for s in items if s["ine"] == ine)["interviews"]
        return interview

    assert (row(last_position(world))["letter_ready"], row(last_position(world))["prepared"]) == (False, False)
    as_student(world, ine, "POST", "/api/me/letters", {**VOEU, "answers": FULL, "ready": True})
    done = as_student(world, ine, "POST", f"/api/me/interviews/{interview_id}/preparation",
                      {"itinerary_ready": True, "letter_printed": True, "materials_ready": True}).json()
    interview = row(done["positions"]["service"])
    assert (interview["letter_ready"], interview["prepared"]) == (True, True)
