"""SPEC §5.1 over HTTP (issue 11): strict JSON types, read-your-writes kept or refused, other methods, the
truth of a 503, list filters naming another establishment, and campaigns of a past rentrée.

In process, on real Redis and SQLite files, as test_http_api; every refusal is shown to have stored nothing.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from test_http_api import (
    COLLEGE,
    EVALUATION_WRITES,
    FORMATION,
    INE,
    LYCEE,
    OTHER_COLLEGE,
    OTHER_INE,
    OTHER_LYCEE,
    REGISTRATION_WRITES,
    cancel_body,
    college_avis_body,
    created,
    fields_of,
    held_body,
    lycee_avis_body,
    principal,
    referent,
    refused,
    register,
    schedule,
    schedule_body,
    student_body,
)

# --- strict JSON types (finding 3) -----------------------------------------------------------------------------

STUDENT = f"/api/students/{INE}"
# (service, path, body with one field of the wrong JSON type, the field named). Each body would be stored if
# its value were coerced: the student is registered and has an interview, held where the write needs it.
LENIENT = [
    ("registration", "/api/students", student_body(student_ine=12345678901), "student_ine"),
    ("registration", "/api/students", student_body(OTHER_INE, college_uai=752547), "college_uai"),
    ("registration", "/api/students", student_body(OTHER_INE, campaign=2027), "campaign"),
    ("registration", "/api/students", student_body(OTHER_INE, referent={**referent(), "user_id": 42}), "referent.user_id"),
    ("registration", "/api/students", student_body(OTHER_INE, event_id=12), "event_id"),
    ("registration", f"{STUDENT}/referent", {"referent": {**referent("Paul Bernard"), "user_id": 7}}, "referent.user_id"),
    ("registration", f"{STUDENT}/interviews", schedule_body(scheduled_at=1893456000), "scheduled_at"),
    ("registration", f"{STUDENT}/interviews", schedule_body(scheduled_at="1893456000"), "scheduled_at"),
    ("registration", f"{STUDENT}/interviews", schedule_body(scheduled_at=1893456000.5), "scheduled_at"),
    ("registration", f"{STUDENT}/interviews", schedule_body(scheduled_at="2030-01-01T10:00:00"), "scheduled_at"),
    ("registration", f"{STUDENT}/interviews", schedule_body(scheduled_at="2030-01-01"), "scheduled_at"),
    ("registration", f"{STUDENT}/interviews", schedule_body(remote_equipment_ready="yes"), "remote_equipment_ready"),
    ("registration", f"{STUDENT}/interviews", schedule_body(remote_equipment_ready="true"), "remote_equipment_ready"),
    ("registration", f"{STUDENT}/interviews", schedule_body(remote_equipment_ready=1), "remote_equipment_ready"),
    ("registration", f"{STUDENT}/interviews", schedule_body(formation_code=2472340631), "formation_code"),
    ("registration", f"{STUDENT}/interviews", schedule_body(formation_code=int(FORMATION)), "formation_code"),
    ("registration", f"{STUDENT}/interviews", schedule_body(lycee_uai=True), "lycee_uai"),
    ("registration", f"{STUDENT}/interviews/cancel", {**cancel_body(), "formation_code": int(FORMATION)}, "formation_code"),
    ("registration", f"{STUDENT}/college-avis", college_avis_body(college=752547), "college_uai"),
    ("registration", f"{STUDENT}/withdrawal", {"reason": "Déménagement", "event_id": 3}, "event_id"),
    ("registration", f"{STUDENT}/reinstatement", {"reason": "Retour", "event_id": 3}, "event_id"),
    ("evaluation", f"{STUDENT}/interviews/held", held_body(held_at=20251124), "held_at"),
    ("evaluation", f"{STUDENT}/interviews/held", held_body(held_at="20251124"), "held_at"),
    ("evaluation", f"{STUDENT}/interviews/held", held_body(held_at="2025-11-24"), "held_at"),
    ("evaluation", f"{STUDENT}/interviews/held", held_body(formation_code=int(FORMATION)), "formation_code"),
    ("evaluation", f"{STUDENT}/interviews/held", held_body(lycee_uai=750502), "lycee_uai"),
    ("evaluation", f"{STUDENT}/interviews/held", held_body(event_id=1), "event_id"),
    ("evaluation", f"{STUDENT}/interviews/cancel", {**cancel_body(), "formation_code": int(FORMATION)}, "formation_code"),
    ("evaluation", f"{STUDENT}/lycee-avis", {**lycee_avis_body(), "formation_code": int(FORMATION)}, "formation_code"),
    ("evaluation", f"{STUDENT}/lycee-avis", {**lycee_avis_body(), "lycee_uai": 750502}, "lycee_uai"),
    ("scoring", "/api/campaigns", {"campaign": 2031}, "campaign"),
    ("scoring", "/api/campaigns", {"campaign": "2031", "bonus_points": "3000"}, "bonus_points"),
    ("scoring", "/api/campaigns", {"campaign": "2031", "bonus_points": 3000.5}, "bonus_points"),
    ("scoring", "/api/campaigns", {"campaign": "2031", "bonus_points": 1e308}, "bonus_points"),
    ("scoring", "/api/campaigns", {"campaign": "2031", "bonus_points": True}, "bonus_points"),
    ("scoring", "/api/campaigns", {"campaign": "2031", "closes_at": 1893456000}, "closes_at"),
    ("scoring", "/api/campaigns", {"campaign": "2031", "closes_at": "2031-06-30"}, "closes_at"),
    ("scoring", "/api/campaigns", {"campaign": "2031", "event_id": 7}, "event_id"),
]
CALLER = {"registration": ("principal", COLLEGE), "evaluation": ("proviseur", LYCEE), "scoring": ("rectorat", None)}


@pytest.fixture
def interviewed(passpro, registration):
    """A registered student with an interview, so that a leniently read write would have been stored."""
    register(passpro, registration)
    schedule(passpro, registration)


@pytest.mark.parametrize(("service", "path", "body", "field"), LENIENT, ids=lambda v: repr(v)[:60])
def test_a_value_of_the_wrong_json_type_is_refused_with_its_field_named(
    passpro, registration, evaluation, scoring, interviewed, service, path, body, field
):
    client = {"registration": registration, "evaluation": evaluation, "scoring": scoring}[service]
    if path.endswith("/lycee-avis"):  # an avis needs a held interview, or a rule would refuse it anyway
        created(evaluation.post(f"{STUDENT}/interviews/held", json=held_body(), headers=passpro.auth(*CALLER["evaluation"])))
    answer = refused(passpro, lambda: client.post(path, json=body, headers=passpro.auth(*CALLER[service])), 422, "invalid_input")
    assert fields_of(answer) == {field}, answer
    assert all(f["message"] != "Valeur invalide." for f in answer["fields"]), answer  # it says what is expected


def test_the_strict_writes_still_take_every_proper_json_value(passpro, registration, evaluation, scoring):
    """The other side of strictness: RFC 3339 times with any offset, booleans, and identifiers that are
    trimmed and upper-cased before they are checked."""
    created(registration.post("/api/students", json=student_body(student_ine=" 123456789ab "), headers=principal(passpro)))
    scheduled = created(registration.post(
        f"{STUDENT}/interviews",
        json=schedule_body(lycee=" 0752845k ", scheduled_at="2030-01-01T10:00:00+01:00", mode="distanciel",
                           remote_equipment_ready=True, room="Salle 204"),
        headers=principal(passpro),
    ))
    assert scheduled["event"]["payload"]["scheduled_at"] == "2030-01-01T09:00:00Z"
    assert scheduled["event"]["payload"]["remote_equipment_ready"] is True
    held = created(evaluation.post(
        f"{STUDENT}/interviews/held", json=held_body(held_at="2025-11-24T10:00:00.250Z"), headers=passpro.auth("proviseur", LYCEE)
    ))
    assert held["event"]["payload"]["held_at"] == "2025-11-24T10:00:00.250000Z"
    opened = created(scoring.post(
        "/api/campaigns", json={"campaign": "2031", "bonus_points": 3000, "closes_at": "2031-06-30T23:59:00-02:00"},
        headers=passpro.auth("rectorat", None),
    ))
    assert opened["event"]["payload"] == {"bonus_points": 3000, "closes_at": "2031-07-01T01:59:00Z"}
    integral = created(scoring.post("/api/campaigns", json={"campaign": "2032", "bonus_points": 3000.0},
                                    headers=passpro.auth("rectorat", None)))  # JSON's one number type: an integer
    assert integral["event"]["payload"]["bonus_points"] == 3000


@pytest.mark.parametrize("content", [b"{not json", b'{"reason": "x",}', b'{"reason": "x"} trailing', b"\xff\xfe"])
def test_a_body_that_is_not_json_is_named_as_the_body_not_a_character_offset(passpro, registration, content):
    register(passpro, registration)
    answer = refused(
        passpro,
        lambda: registration.post(
            f"{STUDENT}/withdrawal", content=content, headers={**principal(passpro), "Content-Type": "application/json"}
        ),
        422,
        "invalid_input",
    )
    assert fields_of(answer) == {"body"}, answer


# --- read-your-writes kept or refused (finding 4) ---------------------------------------------------------------

READS = {
    "registration": ("/api/students", ("principal", COLLEGE)),
    "evaluation": ("/api/interviews", ("lycee_staff", LYCEE)),
    "scoring": ("/api/bonuses", ("rectorat", None)),
}


def stop_the_view(client, service: str) -> None:
    """Cancel the service's consumer task (named `<service>-consumer` by build_app) in the app's own loop:
    its view then never reads what is written after, whatever the wait."""

    async def stop() -> None:
        (task,) = [t for t in asyncio.all_tasks() if t.get_name() == f"{service}-consumer"]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    client.portal.call(stop)


@pytest.mark.parametrize("service", list(READS))
def test_a_read_whose_view_does_not_reach_min_position_is_a_503_view_behind(passpro, registration, evaluation, scoring, service):
    client = {"registration": registration, "evaluation": evaluation, "scoring": scoring}[service]
    path, caller = READS[service]
    stop_the_view(client, service)
    runtime = client.app.state.runtime
    runtime.settings = runtime.settings.model_copy(update={"read_wait_seconds": 0.0})  # no sleep: the view is stopped
    written = register(passpro, registration)
    schedule(passpro, registration)
    answer = refused(
        passpro,  # and nothing stored: no access-log entry for a list that was not shown
        lambda: client.get(path, params={"min_position": written["positions"]["service"]}, headers=passpro.auth(*caller)),
        503,
        "view_behind",
    )
    assert "min_position" in answer["message"]
    retry = client.get(path, params={"min_position": written["positions"]["service"]}, headers=passpro.auth(*caller))
    assert retry.status_code == 503 and int(retry.headers["Retry-After"]) > 0


def test_a_read_whose_view_reaches_min_position_answers_with_the_write(passpro, registration):
    """The same read with the view running: 200 with the student (the wait is bounded, not a refusal)."""
    written = register(passpro, registration)
    listed = registration.get("/api/students", params={"min_position": written["positions"]["service"]}, headers=principal(passpro))
    assert listed.status_code == 200 and [s["ine"] for s in listed.json()["items"]] == [INE]


# --- other methods (finding 6) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/students", "GET, HEAD, OPTIONS, POST"),  # GET and POST are two routes: both are named
        ("PUT", "/api/students", "GET, HEAD, OPTIONS, POST"),
        ("GET", f"{STUDENT}/withdrawal", "OPTIONS, POST"),
        ("PATCH", "/api/establishments", "GET, HEAD, OPTIONS"),
        ("HEAD", f"{STUDENT}/withdrawal", "OPTIONS, POST"),
    ],
)
def test_a_method_the_path_does_not_offer_is_a_405_with_allow(passpro, registration, method, path, allow):
    register(passpro, registration)
    send = lambda: registration.request(method, path, json={"reason": "x"}, headers=principal(passpro))  # noqa: E731
    if method == "HEAD":
        answer = send()
        assert answer.status_code == 405 and answer.content == b""
    else:
        assert refused(passpro, send, 405, "method_not_allowed")
        answer = send()
    assert answer.headers["Allow"] == allow


def test_a_405_on_another_service_and_on_a_page_carries_allow_too(passpro, scoring, evaluation):
    answer = scoring.delete("/api/campaigns", headers=passpro.auth("rectorat", None))
    assert (answer.status_code, answer.headers["Allow"]) == (405, "OPTIONS, POST")
    page = evaluation.put("/connexion")
    assert page.status_code == 405 and "GET" in page.headers["Allow"].split(", ")


def test_head_on_a_get_route_is_the_get_without_its_body(passpro, registration, scoring):
    written = register(passpro, registration)
    # the summary read at the registration's position: its view has applied it before either answer is made
    summary = f"/api/reports/summary?min_position={written['positions']['service']}"
    for client, path, headers in [
        (registration, "/api/establishments", principal(passpro)),
        (scoring, summary, passpro.auth("rectorat", None)),
        (registration, "/connexion", {}),
    ]:
        got, head = client.get(path, headers=headers), client.head(path, headers=headers)
        assert (head.status_code, got.status_code) == (200, 200), path
        assert head.content == b"" and got.content != b""
        assert head.headers["content-type"] == got.headers["content-type"]
        if path.startswith("/api/"):  # a page's form carries a fresh CSRF token at each GET
            assert head.headers["content-length"] == got.headers["content-length"]
    assert registration.head("/api/establishments").status_code == 401  # the token is checked as for the GET


def test_options_names_the_methods_of_a_path(passpro, registration, scoring):
    before = passpro.snapshot()
    for client, path, allow in [
        (registration, "/api/students", "GET, HEAD, OPTIONS, POST"),
        (registration, f"{STUDENT}/interviews", "OPTIONS, POST"),
        (scoring, f"/api/bonuses/{INE}", "GET, HEAD, OPTIONS"),
        (scoring, "/api/exports/affelnet.csv", "GET, HEAD, OPTIONS"),
    ]:
        answer = client.options(path)  # no token: which methods a path offers is public, as /openapi.json is
        assert (answer.status_code, answer.headers["Allow"], answer.content) == (204, allow, b""), path
    assert passpro.snapshot() == before


# --- list filters naming another establishment (finding 6) -----------------------------------------------------


@pytest.mark.parametrize(
    ("service", "path", "role", "own", "other", "field"),
    [
        ("registration", "/api/students", "principal", COLLEGE, OTHER_COLLEGE, "college_uai"),
        ("registration", "/api/students", "referent", COLLEGE, OTHER_COLLEGE, "college_uai"),
        ("evaluation", "/api/interviews", "proviseur", LYCEE, OTHER_LYCEE, "lycee_uai"),
        ("evaluation", "/api/interviews", "lycee_staff", LYCEE, OTHER_LYCEE, "lycee_uai"),
    ],
)
def test_a_list_filter_naming_another_establishment_is_a_403(
    passpro, registration, evaluation, service, path, role, own, other, field
):
    client = registration if service == "registration" else evaluation
    register(passpro, registration, ine="000000009AB", college=OTHER_COLLEGE)  # someone the filter would show
    answer = refused(passpro, lambda: client.get(path, params={field: other}, headers=passpro.auth(role, own)), 403,
                     "other_establishment")
    assert answer["field"] == field
    assert client.get(path, params={field: own}, headers=passpro.auth(role, own)).status_code == 200


# --- campaigns (finding 7) -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("year", ["2019", "2000", "0000"])
def test_opening_the_campaign_of_a_past_rentree_is_a_409(passpro, scoring, year):
    answer = refused(
        passpro, lambda: scoring.post("/api/campaigns", json={"campaign": year}, headers=passpro.auth("rectorat", None)),
        409, "campaign_in_past",
    )
    assert year in answer["message"]


def test_passpro_campaign_open_refuses_a_past_rentree_as_the_api_does(passpro, passpro_cli):
    before = passpro.snapshot()
    code, _, err = passpro_cli("campaign", "open", "2019")
    assert code == 1
    assert "La rentrée 2019 est déjà passée" in err, err
    assert passpro.snapshot() == before
