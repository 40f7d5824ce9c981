"""The HTTP edge of registration and evaluation (SPEC §5), in process, on real Redis and SQLite.

Every refused request is checked to have stored nothing: the académie's keys (service
streams, student streams, event ids) are the same before and after.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from conftest import CAMPAIGN, Passpro
from shared.contracts.identifiers import uai_check_letter
from shared.runtime.http.auth import InvalidToken
from shared.runtime.http.guard import UNAVAILABLE_MESSAGE

COLLEGE = "0752536Z"  # Collège Voltaire
OTHER_COLLEGE = "0751790N"  # Collège Pierre Alviset
LYCEE = "0752845K"  # LP Théophile Gautier
FORMATION = "2473121131"
OTHER_LYCEE = "0750788Z"  # LP Marcel Deprez
OTHER_LYCEE_FORMATION = "2472550731"  # offered by Marcel Deprez, not by Théophile Gautier
UNKNOWN_COLLEGE = "0750001" + uai_check_letter("0750001")  # a well-formed UAI absent from the reference data
INE = "123456789AB"
OTHER_INE = "1234567890A"


# --- bodies ------------------------------------------------------------------------------------------


def referent(name: str = "Claire Dupont") -> dict:
    return {"user_id": "referent-dupont", "name": name, "email": "claire.dupont@ac-paris.fr"}


def student_body(ine: str = INE, college: str = COLLEGE, **changes) -> dict:
    body = {
        "student_ine": ine,
        "college_uai": college,
        "last_name": "Martin",
        "first_name": "Léa",
        "class_name": "3e B",
        "referent": referent(),
    }
    return {**body, **changes}


def schedule_body(lycee: str = LYCEE, formation: str = FORMATION, **changes) -> dict:
    body = {
        "lycee_uai": lycee,
        "formation_code": formation,
        "scheduled_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        "mode": "presentiel",
    }
    return {**body, **changes}


def college_avis_body(college: str = COLLEGE, **changes) -> dict:
    return {"college_uai": college, "avis": "favorable", "comment": "Très motivée.", **changes}


def held_body(lycee: str = LYCEE, formation: str = FORMATION, **changes) -> dict:
    body = {
        "lycee_uai": lycee,
        "formation_code": formation,
        "held_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "report": {"motivation": "satisfaisante", "chances_of_success": "fragile", "advice": "Visiter l'atelier."},
    }
    return {**body, **changes}


def lycee_avis_body(lycee: str = LYCEE, formation: str = FORMATION, avis: str = "favorable") -> dict:
    return {"lycee_uai": lycee, "formation_code": formation, "avis": avis}


def cancel_body(lycee: str = LYCEE, formation: str = FORMATION) -> dict:
    return {"lycee_uai": lycee, "formation_code": formation, "reason": "reporte"}


REGISTRATION_WRITES = {
    "/api/students": lambda: student_body(),
    f"/api/students/{INE}/referent": lambda: {"referent": referent("Paul Bernard")},
    f"/api/students/{INE}/interviews": schedule_body,
    f"/api/students/{INE}/interviews/cancel": cancel_body,
    f"/api/students/{INE}/college-avis": college_avis_body,
    f"/api/students/{INE}/withdrawal": lambda: {"reason": "Déménagement"},
    f"/api/students/{INE}/reinstatement": lambda: {"reason": "Retour"},
}
EVALUATION_WRITES = {
    f"/api/students/{INE}/interviews/held": held_body,
    f"/api/students/{INE}/interviews/cancel": cancel_body,
    f"/api/students/{INE}/lycee-avis": lycee_avis_body,
}


# --- helpers -----------------------------------------------------------------------------------------


def principal(passpro: Passpro, college: str = COLLEGE, user: str | None = None) -> dict:
    return passpro.auth("principal", college, user)


def refused(passpro: Passpro, send, status: int, code: str | None = None, ine: str = INE) -> dict:
    """Send a request that must be refused with `status`, and show that nothing was stored."""
    service_streams = [passpro.service_stream("registration"), passpro.service_stream("evaluation")]
    lengths = {key: passpro.xlen(key) for key in [*service_streams, passpro.student_stream(ine)]}
    before = passpro.snapshot()
    response = send()
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    if code is not None:
        assert body["error"] == code, body
    assert {key: passpro.xlen(key) for key in lengths} == lengths
    assert passpro.snapshot() == before
    return body


def fields_of(body: dict) -> set[str]:
    assert body.get("fields"), body
    return {f["field"] for f in body["fields"]}


def created(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def register(passpro: Passpro, client, ine: str = INE, college: str = COLLEGE) -> dict:
    return created(client.post("/api/students", json=student_body(ine, college), headers=principal(passpro, college)))


def schedule(passpro: Passpro, client, ine: str = INE, lycee: str = LYCEE, formation: str = FORMATION) -> dict:
    return created(
        client.post(
            f"/api/students/{ine}/interviews", json=schedule_body(lycee, formation), headers=principal(passpro)
        )
    )


def bad_tokens(passpro: Passpro) -> dict[str, dict[str, str]]:
    """Every way a request's token may be wrong, as headers; each must answer 401."""
    now = int(time.time())
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    return {
        "no token": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": "Basic cHJpbmNpcGFsOnNlY3JldA=="},
        "malformed": bearer("not.a.jwt"),
        "garbage": bearer("x" * 300),
        "expired": bearer(passpro.token("principal", COLLEGE, ttl_seconds=60, now=now - 3600)),
        "wrong signature": bearer(passpro.forged({"role": "principal", "uai": COLLEGE}, secret="another-" * 8)),
        "unsigned (alg none)": bearer(
            jwt.encode({"sub": "x", "role": "principal", "uai": COLLEGE, "exp": now + 600, "iss": "passpro"}, None, algorithm="none")
        ),
        "wrong issuer": bearer(passpro.forged({"role": "principal", "uai": COLLEGE, "iss": "elsewhere"})),
        "no expiry": bearer(
            jwt.encode({"sub": "x", "role": "principal", "uai": COLLEGE, "iss": "passpro"}, passpro.secret, algorithm="HS256")
        ),
        "principal naming a lycée": bearer(passpro.forged({"role": "principal", "uai": LYCEE})),
        "proviseur naming a collège": bearer(passpro.forged({"role": "proviseur", "uai": COLLEGE})),
        "referent with no establishment": bearer(passpro.forged({"role": "referent", "uai": None})),
        "rectorat naming a collège": bearer(passpro.forged({"role": "rectorat", "uai": COLLEGE})),
        "unknown role": bearer(passpro.forged({"role": "admin", "uai": None})),
        "unknown establishment": bearer(passpro.forged({"role": "principal", "uai": UNKNOWN_COLLEGE})),
        "empty subject": bearer(passpro.forged({"sub": "", "role": "principal", "uai": COLLEGE})),
    }


# --- 401 ---------------------------------------------------------------------------------------------


def test_issue_token_refuses_a_role_that_does_not_match_its_establishment(passpro):
    with pytest.raises(InvalidToken):
        passpro.token("principal", LYCEE)
    with pytest.raises(InvalidToken):
        passpro.token("lycee_staff", COLLEGE)


@pytest.mark.parametrize("path", sorted(REGISTRATION_WRITES))
def test_registration_writes_refuse_every_bad_token_with_401(passpro, registration, path):
    register(passpro, registration)
    for why, headers in bad_tokens(passpro).items():
        body = refused(passpro, lambda: registration.post(path, json=REGISTRATION_WRITES[path](), headers=headers), 401)
        assert body["error"] == "unauthenticated", why


@pytest.mark.parametrize("path", sorted(EVALUATION_WRITES))
def test_evaluation_writes_refuse_every_bad_token_with_401(passpro, registration, evaluation, path):
    register(passpro, registration)
    schedule(passpro, registration)
    tokens = bad_tokens(passpro)
    tokens["lycee_staff naming a collège"] = {"Authorization": f"Bearer {passpro.forged({'role': 'lycee_staff', 'uai': COLLEGE})}"}
    for why, headers in tokens.items():
        body = refused(passpro, lambda: evaluation.post(path, json=EVALUATION_WRITES[path](), headers=headers), 401)
        assert body["error"] == "unauthenticated", why


def test_reads_need_a_token_too(passpro, registration, evaluation):
    for client, path in ((registration, "/api/students"), (registration, "/api/establishments"), (evaluation, "/api/interviews")):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_401_names_the_bearer_scheme(registration):
    response = registration.post("/api/students", json=student_body())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


# --- 413 ---------------------------------------------------------------------------------------------


def _oversized(**changes) -> bytes:
    body = json.dumps(student_body(**changes, last_name="M" * (70 * 1024))).encode()
    assert len(body) > 64 * 1024
    return body


def test_a_body_over_64_kib_is_refused_with_413(passpro, registration):
    refused(
        passpro,
        lambda: registration.post(
            "/api/students", content=_oversized(), headers={**principal(passpro), "Content-Type": "application/json"}
        ),
        413,
        "payload_too_large",
    )


def test_a_chunked_body_over_64_kib_without_content_length_is_refused_with_413(passpro, registration):
    def chunks():
        data = _oversized()
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    def send():
        response = registration.post(
            "/api/students", content=chunks(), headers={**principal(passpro), "Content-Type": "application/json"}
        )
        return response

    refused(passpro, send, 413, "payload_too_large")


def test_a_body_streamed_in_many_small_messages_is_bounded_too(passpro, registration):
    """Straight to the ASGI app: many `http.request` messages, no content-length, 72 KiB in all."""
    headers = [
        (b"authorization", f"Bearer {passpro.token('principal', COLLEGE)}".encode()),
        (b"content-type", b"application/json"),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/students", "raw_path": b"/api/students", "root_path": "", "query_string": b"",
        "headers": headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }

    async def call() -> int:
        messages = [{"type": "http.request", "body": b" " * 1024, "more_body": True} for _ in range(72)]
        messages.append({"type": "http.request", "body": b"", "more_body": False})
        sent: list[dict] = []

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await registration.app(scope, receive, send)
        return next(m["status"] for m in sent if m["type"] == "http.response.start")

    before = passpro.snapshot()
    assert registration.portal.call(call) == 413
    assert passpro.snapshot() == before


def test_every_write_of_both_services_refuses_an_oversized_body(passpro, registration, evaluation):
    register(passpro, registration)
    schedule(passpro, registration)
    padding = "x" * (65 * 1024)
    for client, writes, who in (
        (registration, REGISTRATION_WRITES, principal(passpro)),
        (evaluation, EVALUATION_WRITES, passpro.auth("proviseur", LYCEE)),
    ):
        for path, body in writes.items():
            content = json.dumps({**body(), "reason": padding}).encode()
            for framing in ("content-length", "chunked"):  # an iterator makes httpx send it chunked
                refused(
                    passpro,
                    lambda: client.post(
                        path,
                        content=iter([content]) if framing == "chunked" else content,
                        headers={**who, "Content-Type": "application/json"},
                    ),
                    413,
                    "payload_too_large",
                )


def test_a_body_just_under_the_limit_is_read(passpro, registration):
    body = json.dumps(student_body(last_name="M" * 200)).encode()
    padded = body[:-1] + b" " * (64 * 1024 - len(body)) + b"}"
    assert len(padded) == 64 * 1024
    response = registration.post("/api/students", content=padded, headers={**principal(passpro), "Content-Type": "application/json"})
    assert response.status_code == 422  # read and checked (the name is too long), not refused for its size
    assert "last_name" in fields_of(response.json())


# --- 422 ---------------------------------------------------------------------------------------------


def test_missing_fields_are_named(passpro, registration):
    body = refused(passpro, lambda: registration.post("/api/students", json={}, headers=principal(passpro)), 422, "invalid_input")
    assert {"student_ine", "college_uai", "last_name", "first_name", "class_name", "referent"} <= fields_of(body)
    assert all(f["message"] for f in body["fields"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"student_ine": "12345678901"}, "student_ine"),
        ({"student_ine": "123"}, "student_ine"),
        ({"college_uai": "0752547M"}, "college_uai"),  # wrong check letter
        ({"college_uai": "752547L"}, "college_uai"),
        ({"last_name": 42}, "last_name"),
        ({"last_name": "   "}, "last_name"),
        ({"last_name": "Mar\x00tin"}, "last_name"),
        ({"last_name": "Mar\x1b[31mtin"}, "last_name"),
        ({"first_name": "L" * 10_000}, "first_name"),
        ({"class_name": "3" * 41}, "class_name"),
        ({"referent": {**referent(), "email": "pas-un-courriel"}}, "referent.email"),
        ({"referent": {**referent(), "name": "Claire\x07"}}, "referent.name"),
        ({"referent": "Claire Dupont"}, "referent"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"campaign": "27"}, "campaign"),
        ({"actor": {"user_id": "me", "role": "rectorat"}}, "actor"),  # the service fills the actor
        ({"bonus_points": 9999}, "bonus_points"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_a_registration_with_a_bad_field_is_refused_with_the_field_named(passpro, registration, changes, field):
    body = refused(
        passpro,
        lambda: registration.post("/api/students", json=student_body(**changes), headers=principal(passpro)),
        422,
        "invalid_input",
    )
    assert field in fields_of(body)


def test_identifiers_are_normalised_before_they_are_checked(passpro, registration):
    response = registration.post(
        "/api/students", json=student_body(ine=" 123456789ab ", college=" 0752536z "), headers=principal(passpro)
    )
    event = created(response)["event"]
    assert (event["student_ine"], event["payload"]["college_uai"]) == (INE, COLLEGE)


def test_an_unknown_college_is_refused_with_422(passpro, registration):
    body = refused(
        passpro,
        lambda: registration.post(
            "/api/students", json=student_body(college=UNKNOWN_COLLEGE), headers=principal(passpro)
        ),
        422,
        "unknown_college",
    )
    assert fields_of(body) == {"college_uai"}


def test_a_lycee_named_as_the_college_is_refused_with_422(passpro, registration):
    refused(
        passpro,
        lambda: registration.post("/api/students", json=student_body(college=LYCEE), headers=principal(passpro)),
        422,
        "unknown_college",
    )


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"formation_code": OTHER_LYCEE_FORMATION}, "formation_not_offered", "formation_code"),
        ({"lycee_uai": UNKNOWN_COLLEGE}, "unknown_lycee", "lycee_uai"),
        ({"lycee_uai": COLLEGE}, "unknown_lycee", "lycee_uai"),
        ({"lycee_uai": "0750502P"}, "invalid_input", "lycee_uai"),
        ({"formation_code": "24731211"}, "invalid_input", "formation_code"),
        ({"mode": "hybride"}, "invalid_input", "mode"),
        ({"scheduled_at": "2027-03-01T10:00:00"}, "invalid_input", "scheduled_at"),  # no offset
        ({"scheduled_at": "demain"}, "invalid_input", "scheduled_at"),
        ({"remote_equipment_ready": "peut-être"}, "invalid_input", "remote_equipment_ready"),
        ({"interview_id": "mine"}, "invalid_input", "interview_id"),  # the service makes the id
    ],
    ids=lambda v: repr(v)[:40],
)
def test_scheduling_with_bad_input_is_refused_with_422(passpro, registration, changes, code, field):
    register(passpro, registration)
    body = refused(
        passpro,
        lambda: registration.post(f"/api/students/{INE}/interviews", json=schedule_body(**changes), headers=principal(passpro)),
        422,
        code,
    )
    assert field in fields_of(body)


def test_a_bad_ine_in_the_path_is_refused_with_422(passpro, registration):
    body = refused(
        passpro,
        lambda: registration.post("/api/students/12345/college-avis", json=college_avis_body(), headers=principal(passpro)),
        422,
        "invalid_input",
    )
    assert "ine" in fields_of(body)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[]", b'"texte"', b"null", "nom=Martin".encode()],
    ids=["broken", "empty", "array", "string", "null", "form"],
)
def test_a_body_that_is_not_a_json_object_is_refused_with_422(passpro, registration, content):
    body = refused(
        passpro,
        lambda: registration.post(
            "/api/students", content=content, headers={**principal(passpro), "Content-Type": "application/json"}
        ),
        422,
        "invalid_input",
    )
    assert body["fields"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"avis": "tres_favorable"}, "avis"),
        ({"comment": ""}, "comment"),
        ({"comment": "c" * 601}, "comment"),
        ({"comment": "Bien\x0bvu"}, "comment"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_a_college_avis_with_a_bad_field_is_refused_with_422(passpro, registration, changes, field):
    register(passpro, registration)
    body = refused(
        passpro,
        lambda: registration.post(f"/api/students/{INE}/college-avis", json=college_avis_body(**changes), headers=principal(passpro)),
        422,
    )
    assert field in fields_of(body)


def test_a_campaign_query_that_is_not_a_year_is_refused_with_422(passpro, registration):
    register(passpro, registration)
    body = refused(
        passpro,
        lambda: registration.post(
            f"/api/students/{INE}/withdrawal?campaign=20x7", json={"reason": "r"}, headers=principal(passpro)
        ),
        422,
    )
    assert "campaign" in fields_of(body)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"report": {"motivation": "excellente", "chances_of_success": "fragile", "advice": "a"}}, "report.motivation"),
        ({"report": {"motivation": "fragile", "chances_of_success": "fragile", "advice": "a" * 2001}}, "report.advice"),
        ({"report": {"motivation": "fragile", "chances_of_success": "fragile"}}, "report.advice"),
        ({"held_at": "2027-03-01"}, "held_at"),
        ({"mode": "visio"}, "mode"),
        ({"college_avis_present": True}, "college_avis_present"),  # set by the service, never by the client
        ({"formation_code": OTHER_LYCEE_FORMATION}, "formation_code"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_an_interview_held_with_bad_input_is_refused_with_422(passpro, registration, evaluation, changes, field):
    register(passpro, registration)
    schedule(passpro, registration)
    body = refused(
        passpro,
        lambda: evaluation.post(
            f"/api/students/{INE}/interviews/held", json=held_body(**changes), headers=passpro.auth("lycee_staff", LYCEE)
        ),
        422,
    )
    assert field in fields_of(body)


def test_an_interview_cannot_be_held_in_the_future(passpro, registration, evaluation):
    register(passpro, registration)
    schedule(passpro, registration)
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = refused(
        passpro,
        lambda: evaluation.post(
            f"/api/students/{INE}/interviews/held", json=held_body(held_at=future), headers=passpro.auth("lycee_staff", LYCEE)
        ),
        422,
        "held_in_future",
    )
    assert fields_of(body) == {"held_at"}


# --- 403 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "uai", "path"),
    [
        ("referent", COLLEGE, "/api/students"),
        ("referent", COLLEGE, f"/api/students/{INE}/referent"),
        ("referent", COLLEGE, f"/api/students/{INE}/college-avis"),
        ("referent", COLLEGE, f"/api/students/{INE}/withdrawal"),
        ("referent", COLLEGE, f"/api/students/{INE}/reinstatement"),
        ("lycee_staff", LYCEE, f"/api/students/{INE}/interviews"),
        ("proviseur", LYCEE, f"/api/students/{INE}/interviews/cancel"),
        ("rectorat", None, "/api/students"),
        ("rectorat", None, f"/api/students/{INE}/college-avis"),
    ],
)
def test_a_role_that_may_not_do_it_is_refused_with_403_on_registration(passpro, registration, role, uai, path):
    register(passpro, registration)
    schedule(passpro, registration)
    refused(
        passpro,
        lambda: registration.post(path, json=REGISTRATION_WRITES[path](), headers=passpro.auth(role, uai)),
        403,
        "role_forbidden",
    )


@pytest.mark.parametrize(
    ("role", "uai", "path"),
    [
        ("lycee_staff", LYCEE, f"/api/students/{INE}/lycee-avis"),
        ("principal", COLLEGE, f"/api/students/{INE}/interviews/held"),
        ("referent", COLLEGE, f"/api/students/{INE}/interviews/cancel"),
        ("rectorat", None, f"/api/students/{INE}/lycee-avis"),
    ],
)
def test_a_role_that_may_not_do_it_is_refused_with_403_on_evaluation(passpro, registration, evaluation, role, uai, path):
    register(passpro, registration)
    schedule(passpro, registration)
    created(evaluation.post(f"/api/students/{INE}/interviews/held", json=held_body(), headers=passpro.auth("lycee_staff", LYCEE)))
    refused(
        passpro,
        lambda: evaluation.post(path, json=EVALUATION_WRITES[path](), headers=passpro.auth(role, uai)),
        403,
        "role_forbidden",
    )


def test_a_principal_may_not_register_a_student_for_another_college(passpro, registration):
    body = refused(
        passpro,
        lambda: registration.post("/api/students", json=student_body(college=OTHER_COLLEGE), headers=principal(passpro)),
        403,
        "other_establishment",
    )
    assert body["field"] == "college_uai"


def test_a_principal_may_not_give_the_avis_of_another_college(passpro, registration):
    register(passpro, registration)
    refused(
        passpro,
        lambda: registration.post(
            f"/api/students/{INE}/college-avis", json=college_avis_body(college=OTHER_COLLEGE), headers=principal(passpro)
        ),
        403,
        "other_establishment",
    )


def test_lycee_staff_may_not_act_for_another_lycee(passpro, registration, evaluation):
    register(passpro, registration)
    schedule(passpro, registration, lycee=OTHER_LYCEE, formation=OTHER_LYCEE_FORMATION)
    refused(
        passpro,
        lambda: evaluation.post(
            f"/api/students/{INE}/interviews/held",
            json=held_body(lycee=OTHER_LYCEE, formation=OTHER_LYCEE_FORMATION),
            headers=passpro.auth("proviseur", LYCEE),
        ),
        403,
        "other_establishment",
    )


# --- 404 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(REGISTRATION_WRITES) if p != "/api/students"],
)
def test_another_colleges_student_reads_as_not_found(passpro, registration, path):
    register(passpro, registration)
    schedule(passpro, registration)
    body = lambda: {**REGISTRATION_WRITES[path](), **({"college_uai": OTHER_COLLEGE} if "avis" in path else {})}  # noqa: E731
    refused(
        passpro,
        lambda: registration.post(path, json=body(), headers=principal(passpro, OTHER_COLLEGE)),
        404,
        "student_not_found",
    )


def test_an_unknown_student_reads_as_not_found(passpro, registration):
    refused(
        passpro,
        lambda: registration.post(f"/api/students/{OTHER_INE}/withdrawal", json={"reason": "r"}, headers=principal(passpro)),
        404,
        "student_not_found",
        ine=OTHER_INE,
    )


def test_a_lycee_with_no_interview_for_the_student_sees_no_such_student(passpro, registration, evaluation):
    register(passpro, registration)
    schedule(passpro, registration)  # at LYCEE, not at OTHER_LYCEE
    for path, body in (
        ("interviews/held", held_body(lycee=OTHER_LYCEE, formation=OTHER_LYCEE_FORMATION)),
        ("interviews/cancel", cancel_body(lycee=OTHER_LYCEE, formation=OTHER_LYCEE_FORMATION)),
        ("lycee-avis", lycee_avis_body(lycee=OTHER_LYCEE, formation=OTHER_LYCEE_FORMATION)),
    ):
        refused(
            passpro,
            lambda: evaluation.post(f"/api/students/{INE}/{path}", json=body, headers=passpro.auth("proviseur", OTHER_LYCEE)),
            404,
            "student_not_found",
        )


# --- 409 ---------------------------------------------------------------------------------------------


def test_a_student_is_registered_once(passpro, registration):
    register(passpro, registration)
    refused(
        passpro,
        lambda: registration.post("/api/students", json=student_body(), headers=principal(passpro)),
        409,
        "already_registered",
    )


def test_one_active_interview_per_voeu(passpro, registration):
    register(passpro, registration)
    schedule(passpro, registration)
    refused(
        passpro,
        lambda: registration.post(f"/api/students/{INE}/interviews", json=schedule_body(), headers=principal(passpro)),
        409,
        "interview_already_scheduled",
    )


def test_a_distanciel_interview_needs_the_equipment(passpro, registration):
    register(passpro, registration)
    refused(
        passpro,
        lambda: registration.post(
            f"/api/students/{INE}/interviews", json=schedule_body(mode="distanciel"), headers=passpro.auth("referent", COLLEGE)
        ),
        409,
        "remote_equipment_missing",
    )


def test_writes_are_refused_in_a_campaign_that_is_not_open(passpro, registration):
    register(passpro, registration)
    refused(
        passpro,
        lambda: registration.post("/api/students", json=student_body(campaign="2031"), headers=principal(passpro)),
        409,
        "campaign_not_open",
    )
    refused(
        passpro,
        lambda: registration.post(f"/api/students/{INE}/withdrawal?campaign=2031", json={"reason": "r"}, headers=principal(passpro)),
        404,  # the student is registered in 2027 only
    )


def test_the_college_avis_is_refused_after_an_interview_was_held(passpro, registration, evaluation):
    register(passpro, registration)
    schedule(passpro, registration)
    held = created(
        evaluation.post(f"/api/students/{INE}/interviews/held", json=held_body(), headers=passpro.auth("lycee_staff", LYCEE))
    )
    assert held["event"]["payload"]["college_avis_present"] is False
    refused(
        passpro,
        lambda: registration.post(f"/api/students/{INE}/college-avis", json=college_avis_body(), headers=principal(passpro)),
        409,
        "college_avis_after_interview",
    )


def test_the_lycee_avis_needs_a_held_interview(passpro, registration, evaluation):
    register(passpro, registration)
    schedule(passpro, registration)
    refused(
        passpro,
        lambda: evaluation.post(f"/api/students/{INE}/lycee-avis", json=lycee_avis_body(), headers=passpro.auth("proviseur", LYCEE)),
        409,
        "no_held_interview",
    )


def test_a_withdrawn_student_accepts_nothing_but_reinstatement(passpro, registration, evaluation):
    register(passpro, registration)
    schedule(passpro, registration)
    created(registration.post(f"/api/students/{INE}/withdrawal", json={"reason": "Abandon"}, headers=principal(passpro)))
    refused(
        passpro,
        lambda: registration.post(f"/api/students/{INE}/college-avis", json=college_avis_body(), headers=principal(passpro)),
        409,
        "student_withdrawn",
    )
    refused(
        passpro,
        lambda: evaluation.post(f"/api/students/{INE}/interviews/held", json=held_body(), headers=passpro.auth("lycee_staff", LYCEE)),
        409,
        "student_withdrawn",
    )
    created(registration.post(f"/api/students/{INE}/reinstatement", json={"reason": "Retour"}, headers=principal(passpro)))
    created(registration.post(f"/api/students/{INE}/college-avis", json=college_avis_body(), headers=principal(passpro)))


# --- idempotency ---------------------------------------------------------------------------------------


def test_the_same_event_id_with_the_same_body_answers_the_original_event(passpro, registration):
    event_id = str(uuid.uuid4())
    first = created(registration.post("/api/students", json=student_body(event_id=event_id), headers=principal(passpro)))
    assert first["event"]["event_id"] == event_id
    before = passpro.snapshot()
    again = registration.post("/api/students", json=student_body(event_id=event_id), headers=principal(passpro))
    assert again.status_code == 200, again.text
    assert again.json() == first
    assert passpro.snapshot() == before


def test_the_same_event_id_with_another_body_is_refused(passpro, registration):
    event_id = str(uuid.uuid4())
    register_first = student_body(event_id=event_id)
    created(registration.post("/api/students", json=register_first, headers=principal(passpro)))
    refused(
        passpro,
        lambda: registration.post("/api/students", json={**register_first, "first_name": "Léo"}, headers=principal(passpro)),
        409,
        "event_id_reused",
    )
    refused(
        passpro,
        lambda: registration.post(
            f"/api/students/{INE}/withdrawal", json={"reason": "Abandon", "event_id": event_id}, headers=principal(passpro)
        ),
        409,
        "event_id_reused",
    )
    refused(
        passpro,
        lambda: registration.post(
            "/api/students", json=register_first, headers=principal(passpro, user="another-principal")
        ),
        409,
        "event_id_reused",
    )


def test_an_event_id_used_by_one_service_cannot_be_reused_by_the_other(passpro, registration, evaluation):
    register(passpro, registration)
    event_id = str(uuid.uuid4())
    created(
        registration.post(
            f"/api/students/{INE}/interviews", json={**schedule_body(), "event_id": event_id}, headers=principal(passpro)
        )
    )
    refused(
        passpro,
        lambda: evaluation.post(
            f"/api/students/{INE}/interviews/held",
            json={**held_body(), "event_id": event_id},
            headers=passpro.auth("lycee_staff", LYCEE),
        ),
        409,
        "event_id_reused",
    )


# --- the order of the checks (SPEC §5) ---------------------------------------------------------------------


def test_a_bad_token_answers_before_an_oversized_body(passpro, registration):
    refused(
        passpro,
        lambda: registration.post(
            "/api/students", content=_oversized(), headers={"Authorization": "Bearer nope", "Content-Type": "application/json"}
        ),
        401,
        "unauthenticated",
    )


def test_an_oversized_body_answers_before_its_shape(passpro, registration):
    content = json.dumps({"unknown": "x" * (65 * 1024)}).encode()
    refused(
        passpro,
        lambda: registration.post(
            "/api/students", content=content, headers={**passpro.auth("referent", COLLEGE), "Content-Type": "application/json"}
        ),
        413,
    )


def test_a_bad_shape_answers_before_a_wrong_role(passpro, registration):
    refused(
        passpro,
        lambda: registration.post("/api/students", json={"student_ine": INE}, headers=passpro.auth("referent", COLLEGE)),
        422,
        "invalid_input",
    )


def test_reference_data_answers_before_a_wrong_role_or_establishment(passpro, registration, evaluation):
    refused(
        passpro,
        lambda: registration.post(
            "/api/students", json=student_body(college=UNKNOWN_COLLEGE), headers=passpro.auth("referent", COLLEGE)
        ),
        422,
        "unknown_college",
    )
    refused(
        passpro,
        lambda: evaluation.post(
            f"/api/students/{INE}/lycee-avis",
            json=lycee_avis_body(formation=OTHER_LYCEE_FORMATION),
            headers=passpro.auth("lycee_staff", OTHER_LYCEE),
        ),
        422,
        "formation_not_offered",
    )


def test_a_wrong_role_answers_before_visibility(passpro, registration):
    register(passpro, registration)
    refused(
        passpro,
        lambda: registration.post(
            f"/api/students/{INE}/withdrawal", json={"reason": "r"}, headers=passpro.auth("referent", OTHER_COLLEGE)
        ),
        403,
        "role_forbidden",
    )


def test_visibility_answers_before_the_rules(passpro, registration):
    register(passpro, registration)
    created(registration.post(f"/api/students/{INE}/withdrawal", json={"reason": "Abandon"}, headers=principal(passpro)))
    refused(
        passpro,
        lambda: registration.post(
            f"/api/students/{INE}/withdrawal", json={"reason": "r"}, headers=principal(passpro, OTHER_COLLEGE)
        ),
        404,
        "student_not_found",
    )


def test_a_future_held_at_answers_422_before_role_visibility_and_rules(passpro, registration, evaluation):
    """`held_at` in the future is invalid input (SPEC §5), so it answers before 403, 404 and 409."""
    register(passpro, registration)
    schedule(passpro, registration)
    created(registration.post(f"/api/students/{INE}/withdrawal", json={"reason": "Abandon"}, headers=principal(passpro)))
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    for who, body in (
        (passpro.auth("lycee_staff", LYCEE), held_body(held_at=future)),  # withdrawn student: a 409 otherwise
        (passpro.auth("lycee_staff", OTHER_LYCEE), held_body(OTHER_LYCEE, OTHER_LYCEE_FORMATION, held_at=future)),  # 404
        (passpro.auth("proviseur", OTHER_LYCEE), held_body(held_at=future)),  # another lycée: a 403 otherwise
    ):
        refused(
            passpro,
            lambda: evaluation.post(f"/api/students/{INE}/interviews/held", json=body, headers=who),
            422,
            "held_in_future",
        )


# --- a whole journey, lists and read-your-writes ------------------------------------------------------------


def test_a_students_journey_answers_201_with_the_event_and_its_positions(passpro, registration, evaluation):
    reg = register(passpro, registration)
    assert set(reg) == {"event", "positions"}
    assert set(reg["positions"]) == {"service", "student"}
    event = reg["event"]
    assert event["event_type"] == "StudentRegistered" and event["schema_version"] == 1
    assert event["campaign"] == CAMPAIGN and event["student_ine"] == INE
    assert event["actor"] == {"user_id": f"principal-{COLLEGE}", "role": "principal", "uai": COLLEGE}
    assert event["recorded_at"] and event["occurred_at"]
    assert passpro.xlen(passpro.service_stream("registration")) == 1
    assert passpro.xlen(passpro.student_stream(INE)) == 1

    created(registration.post(f"/api/students/{INE}/college-avis", json=college_avis_body(), headers=principal(passpro)))
    scheduled = schedule(passpro, registration)
    interview_id = scheduled["event"]["payload"]["interview_id"]
    held = created(
        evaluation.post(f"/api/students/{INE}/interviews/held", json=held_body(), headers=passpro.auth("lycee_staff", LYCEE))
    )
    assert held["event"]["payload"]["interview_id"] == interview_id
    assert held["event"]["payload"]["college_avis_present"] is True
    avis = created(
        evaluation.post(f"/api/students/{INE}/lycee-avis", json=lycee_avis_body(), headers=passpro.auth("proviseur", LYCEE))
    )
    assert passpro.xlen(passpro.service_stream("registration")) == 3
    assert passpro.xlen(passpro.service_stream("evaluation")) == 2
    assert passpro.xlen(passpro.student_stream(INE)) == 5

    # Read-your-writes across services: the collège sees the lycée's avis and the bonus at once.
    listed = registration.get(
        "/api/students", params={"min_position": avis["positions"]["service"]}, headers=principal(passpro)
    ).json()
    (row,) = listed["items"]
    assert row["voeux"] == [{"lycee_uai": LYCEE, "formation_code": FORMATION, "lycee_avis": "favorable", "bonus_points": 2500}]
    assert row["total_bonus_points"] == 2500


def test_a_list_shows_the_write_at_once_with_min_position(passpro, registration):
    for n in range(3):
        written = register(passpro, registration, ine=f"00000000{n}AB")
    listed = registration.get(
        "/api/students", params={"min_position": written["positions"]["service"]}, headers=principal(passpro)
    )
    assert listed.status_code == 200
    assert [s["ine"] for s in listed.json()["items"]] == ["000000000AB", "000000001AB", "000000002AB"]

    withdrawn = created(
        registration.post("/api/students/000000001AB/withdrawal", json={"reason": "Abandon"}, headers=principal(passpro))
    )
    listed = registration.get(
        "/api/students", params={"min_position": withdrawn["positions"]["service"]}, headers=principal(passpro)
    ).json()
    assert [s["status"] for s in listed["items"]] == ["active", "withdrawn", "active"]


def test_lists_answer_items_total_limit_offset(passpro, registration):
    for n in range(3):
        written = register(passpro, registration, ine=f"00000000{n}AB")
    register(passpro, registration, ine="000000009AB", college=OTHER_COLLEGE)
    response = registration.get(
        "/api/students",
        params={"limit": 2, "offset": 1, "min_position": written["positions"]["service"]},
        headers=principal(passpro),
    )
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"items", "total", "limit", "offset"}
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)  # another collège's student is not counted
    assert [s["ine"] for s in page["items"]] == ["000000001AB", "000000002AB"]
    assert registration.get("/api/students", params={"limit": 0}, headers=principal(passpro)).status_code == 422


def test_the_lycee_lists_its_interviews_with_the_college_avis(passpro, registration, evaluation):
    register(passpro, registration)
    created(registration.post(f"/api/students/{INE}/college-avis", json=college_avis_body(), headers=principal(passpro)))
    written = schedule(passpro, registration)
    listed = evaluation.get(
        "/api/interviews", params={"min_position": written["positions"]["service"]}, headers=passpro.auth("lycee_staff", LYCEE)
    )
    assert listed.status_code == 200
    page = listed.json()
    assert set(page) == {"items", "total", "limit", "offset"} and page["total"] == 1
    (item,) = page["items"]
    assert (item["ine"], item["college_avis"], item["college_comment"], item["college_avis_missing"]) == (
        INE, "favorable", "Très motivée.", False,
    )
    other = evaluation.get(
        "/api/interviews", params={"min_position": written["positions"]["service"]}, headers=passpro.auth("lycee_staff", OTHER_LYCEE)
    )
    assert other.json()["total"] == 0


def test_establishments_list_the_reference_data(passpro, registration):
    page = registration.get("/api/establishments", headers=passpro.auth("referent", COLLEGE)).json()
    assert {"items", "total", "limit", "offset"} <= set(page)
    by_uai = {e["uai"]: e for e in page["items"]}
    assert by_uai[COLLEGE]["type"] == "college" and by_uai[COLLEGE]["formations"] == []
    assert FORMATION in {f["code"] for f in by_uai[LYCEE]["formations"]}


def test_a_campaign_opened_over_http_accepts_registrations(passpro, registration, scoring):
    rectorat = passpro.auth("rectorat", None)
    refused(passpro, lambda: scoring.post("/api/campaigns", json={"campaign": "2031"}, headers=principal(passpro)), 403, "role_forbidden")
    opened = created(scoring.post("/api/campaigns", json={"campaign": "2031", "bonus_points": 3000}, headers=rectorat))
    assert opened["event"]["payload"] == {"bonus_points": 3000, "closes_at": None}
    refused(passpro, lambda: scoring.post("/api/campaigns", json={"campaign": "2031"}, headers=rectorat), 409, "campaign_already_open")
    again = registration.post("/api/students", json=student_body(campaign="2031"), headers=principal(passpro))
    assert created(again)["event"]["campaign"] == "2031"


# --- health ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["registration", "evaluation", "scoring"])
def test_health_and_readiness_answer_200_without_a_token(passpro, service):
    with passpro.client(service) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert client.get("/openapi.json").status_code == 200


def test_a_service_without_its_migrations_is_not_ready(passpro):
    with passpro.client("registration", migrate=False) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503


def test_a_write_while_the_log_is_out_of_reach_is_a_french_503_that_stores_nothing(passpro):
    """Overload or an outage of Redis is not a bug: the caller is told to retry (with the same event id)."""
    from redis.asyncio import Redis

    before = passpro.snapshot()
    with passpro.client("registration") as client:
        client.app.state.runtime.log.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
        answer = client.post("/api/students", json=student_body(), headers=principal(passpro))
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "2"
    # The truth (issue 11, finding 5): a write may be stored just before the connection breaks, so the
    # answer never says "nothing was stored"; it says to send the same request again with the same event_id.
    assert answer.json() == {"error": "unavailable", "message": UNAVAILABLE_MESSAGE}
    assert "enregistrée ou non" in UNAVAILABLE_MESSAGE and "même event_id" in UNAVAILABLE_MESSAGE
    assert "rien n'a été enregistré" not in UNAVAILABLE_MESSAGE
    assert passpro.snapshot() == before


def test_settings_take_the_database_url_by_field_name(passpro):
    """`Settings(database_url=...)` must not be dropped silently (the service would use ./.passpro instead)."""
    from services.registration.settings import RegistrationSettings

    url = passpro.database_url("registration")
    settings = RegistrationSettings(jwt_secret=passpro.secret, campaign=CAMPAIGN, database_url=url)
    assert settings.resolved_database_url() == url
