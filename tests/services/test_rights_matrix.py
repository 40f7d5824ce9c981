"""The rights of SPEC §1, row by row: every role × every endpoint × its own or another establishment.

The tables live in `matrix.py` (WRITE_RIGHTS, BODY_VARIANTS, READ_RIGHTS); each row is one
case here. A write either succeeds and appends exactly one entry to its service stream
and one to the student's stream, or is refused with the expected status and code and
appends nothing at all.
"""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from matrix import (
    CALLERS,
    COLLEGE,
    LYCEE,
    OTHER_COLLEGE,
    OTHER_LYCEE,
    OTHER_LYCEE_FORMATION,
    OTHER_PRINCIPAL,
    PRINCIPAL,
    PROVISEUR,
    READ_RIGHTS,
    STUDENT_READ_RIGHTS,
    RECTORAT,
    STAFF,
    Caller,
    Answer,
    World,
    WriteCase,
    college_avis_body,
    held_body,
    lycee_avis_body,
    refusal_problems,
    register_body,
    schedule_body,
    world,  # noqa: F401 - the module-scoped fixture
    write_cases,
)
from shared.contracts.reference import default_reference_text, parse_reference
from shared.contracts.streams import entry_id_key

# --- writes ----------------------------------------------------------------------------------------------


def _target_streams(world: World, case: WriteCase, subject: str) -> dict[str, int]:
    """What an accepted write appends: one entry to its service stream and one to the student's."""
    if case.write.service == "scoring":
        return {world.passpro.keys.rectorat: 1}  # a campaign event: the rectorat stream is both
    return {world.passpro.service_stream(case.write.service): 1, world.passpro.student_stream(subject): 1}


def _actor(caller) -> dict:
    return {"user_id": f"{caller.role}-{caller.uai or 'rectorat'}", "role": caller.role, "uai": caller.uai}


@pytest.mark.parametrize("case", write_cases(), ids=lambda case: case.id)
def test_a_write_is_accepted_or_refused_exactly_as_spec_1_says(world, case: WriteCase):
    """Accepted: 201, one entry on its service stream and one on the student's, the caller as actor.
    Refused: the expected status and code, a French refusal body, and nothing appended."""
    subject = world.prepare(case.write.situation)  # the student's INE, or a campaign year
    student = None if case.write.service == "scoring" else subject
    body = {**case.write.body(subject), **case.body_changes}
    before = world.stream_lengths(student)

    response = world.post(case.write.service, case.write.url(subject, world.interviews.get(subject, "")), body, case.caller)

    after = world.stream_lengths(student)
    appended = {key: after[key] - before[key] for key in after if after[key] != before[key]}
    answer = response.json()
    if case.expected.status == 201:
        expected_appended, expected_detail = _target_streams(world, case, subject), _actor(case.caller)
        detail = answer.get("event", {}).get("actor")
    else:
        expected_appended, expected_detail = {}, []  # nothing stored, and no fault in the refusal's body
        detail = refusal_problems(response.status_code, answer)
    assert (response.status_code, answer.get("error"), appended, detail) == (
        case.expected.status, case.expected.error, expected_appended, expected_detail,
    ), response.text


# --- reads -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """Two students the reads are about: A at COLLEGE, interviewed at LYCEE with a favorable avis;
    B at OTHER_COLLEGE, with an interview scheduled at OTHER_LYCEE and no avis yet."""

    a: str
    b: str
    position: str  # the latest entry written for them


@pytest.fixture(scope="module")
def scene(world: World) -> Scene:
    a, b = world.fresh_ine(), world.fresh_ine()
    written = [
        world.ok("registration", "/api/students", register_body(a), PRINCIPAL),
        world.ok("registration", f"/api/students/{a}/college-avis", college_avis_body(), PRINCIPAL),
        world.ok("registration", f"/api/students/{a}/interviews", schedule_body(), PRINCIPAL),
        world.ok("evaluation", f"/api/students/{a}/interviews/held", held_body(), STAFF),
        world.ok("evaluation", f"/api/students/{a}/lycee-avis", lycee_avis_body(), PROVISEUR),
        world.ok("registration", "/api/students", register_body(b, OTHER_COLLEGE), OTHER_PRINCIPAL),
        world.ok(
            "registration", f"/api/students/{b}/interviews", schedule_body(OTHER_LYCEE, OTHER_LYCEE_FORMATION), OTHER_PRINCIPAL
        ),
    ]
    position = max((w["positions"]["service"] for w in written), key=entry_id_key)
    return Scene(a, b, position)


@dataclass(frozen=True)
class Read:
    """One read endpoint, and what of the scene an answer shows."""

    service: str
    path: Callable[[Scene], str]
    seen: Callable[[object, Scene], set[str]]  # what of the scene the 200 answer shows
    visible: Callable[[Caller, Scene], set[str]]  # what of the scene the caller should see


def _scene_ines(items: list[dict], scene: Scene) -> set[str]:
    return {item["ine"] for item in items} & {scene.a, scene.b}


def _by_establishment(caller: Caller, scene: Scene, a_at: str, b_at: str) -> set[str]:
    if caller.role == "rectorat":
        return {scene.a, scene.b}
    return {scene.a} if caller.uai == a_at else {scene.b} if caller.uai == b_at else set()


def _csv_rows(text: str, scene: Scene) -> set[str]:
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    return {f"{r['INE']}={r['BONUS']}" for r in rows if r["INE"] in (scene.a, scene.b)}


SCENE_ESTABLISHMENTS = {COLLEGE, OTHER_COLLEGE, LYCEE, OTHER_LYCEE}

READS: dict[str, Read] = {
    "calendar": Read(  # SPEC §7: any staff reads the campaign's calendar
        "scoring",
        lambda s: f"/api/campaigns/{YEAR}/calendar",
        lambda body, s: {body["campaign"]},
        lambda caller, s: {CAMPAIGN},
    ),
    "establishments": Read(
        "registration",
        lambda s: "/api/establishments",
        lambda body, s: {e["uai"] for e in body["items"]} & SCENE_ESTABLISHMENTS,
        lambda caller, s: SCENE_ESTABLISHMENTS,
    ),
    "formations": Read(
        "registration",
        lambda s: "/api/formations",
        lambda body, s: {f["code"] for f in body["items"]},
        lambda caller, s: {f.code for f in parse_reference(default_reference_text()).formations},
    ),
    "students": Read(
        "registration",
        lambda s: "/api/students",
        lambda body, s: _scene_ines(body["items"], s),
        lambda caller, s: _by_establishment(caller, s, COLLEGE, OTHER_COLLEGE),
    ),
    "interviews": Read(
        "evaluation",
        lambda s: "/api/interviews",
        lambda body, s: _scene_ines(body["items"], s),
        lambda caller, s: _by_establishment(caller, s, LYCEE, OTHER_LYCEE),
    ),
    "student-bonus": Read(
        "scoring",
        lambda s: f"/api/bonuses/{s.a}",
        lambda body, s: {f"{body['ine']}={body['total_bonus_points']}"},
        lambda caller, s: {f"{s.a}=2500"},
    ),
    "bonuses": Read(
        "scoring",
        lambda s: "/api/bonuses",
        lambda body, s: {f"{r['ine']}={r['bonus_points']}" for r in body["items"] if r["ine"] in (s.a, s.b)},
        lambda caller, s: {f"{s.a}=2500", f"{s.b}=0"},
    ),
    "summary": Read(
        "scoring",
        lambda s: "/api/reports/summary",
        lambda body, s: (
            {r["college_uai"] for r in body["college_avis_by_college"]}
            | {r["lycee_uai"] for r in body["lycee_avis_by_lycee_and_formation"]}
        ) & SCENE_ESTABLISHMENTS,
        lambda caller, s: SCENE_ESTABLISHMENTS,
    ),
    "affelnet-export": Read(
        "scoring",
        lambda s: "/api/exports/affelnet.csv",
        lambda text, s: _csv_rows(text, s),
        lambda caller, s: {f"{s.a}=2500"},  # B has no bonus, so no row
    ),
    "me": Read(
        "registration",
        lambda s: "/api/me",
        lambda body, s: {f"{body['ine']}: {len(body['interviews'])} interview, {body['total_bonus_points']} points"},
        lambda caller, s: {f"{s.a}: 1 interview, 2500 points"},  # the student is A (see the eleve column below)
    ),
    "audit": Read(
        "scoring",
        lambda s: f"/api/audit/students/{s.a}",
        lambda body, s: {f"{body['ine']}: {len(body['timeline'])} events, {body['total_bonus_points']} points"},
        lambda caller, s: {f"{s.a}: 5 events, 2500 points"},
    ),
}


def read_cases() -> list:
    return [
        pytest.param(name, caller, expected, id=f"{name} by {caller.label} -> {expected}")
        for name, row in READ_RIGHTS.items()
        for caller, expected in zip(CALLERS, row, strict=True)
    ]


@pytest.mark.parametrize(("name", "caller", "expected"), read_cases())
def test_a_read_shows_exactly_what_spec_1_lets_the_caller_see(world, scene, name: str, caller: Caller, expected: Answer):
    read = READS[name]
    response = world.get(
        read.service, read.path(scene), caller, params={"min_position": scene.position, "limit": 1000}
    )
    if response.status_code == 200:
        body = response.text if name == "affelnet-export" else response.json()
        answer = (200, None, read.seen(body, scene))
    else:
        answer = (response.status_code, response.json().get("error"), None)
    wanted = (expected.status, expected.error, read.visible(caller, scene) if expected.status == 200 else None)
    assert answer == wanted, response.text[:500]


@pytest.mark.parametrize(("name", "expected"), list(STUDENT_READ_RIGHTS.items()), ids=list(STUDENT_READ_RIGHTS))
def test_a_student_reads_their_own_file_the_formations_and_the_reference_only(world, scene, name: str, expected: Answer):
    """The eleve column (SPEC §6): student A, signed in with their own INE, reads what is theirs; any staff read
    is refused with 403 before anything is looked up."""
    read = READS[name]
    token = world.passpro.token("eleve", COLLEGE, f"eleve-{scene.a}", ine=scene.a)
    response = world.clients[read.service].get(
        read.path(scene), headers={"Authorization": f"Bearer {token}"},
        params={"min_position": scene.position, "limit": 1000},
    )
    if response.status_code == 200:
        answer = (200, None, read.seen(response.json(), scene))
    else:
        answer = (response.status_code, response.json().get("error"), None)
    wanted = (expected.status, expected.error, read.visible(Caller("student", "eleve", COLLEGE), scene)
              if expected.status == 200 else None)
    assert answer == wanted, response.text[:500]


def test_a_student_of_another_ine_never_reads_as_student_a(world, scene):
    """Student B's token reads B's file (at OTHER_COLLEGE), never A's; an INE nobody registered is a 404."""
    token = world.passpro.token("eleve", OTHER_COLLEGE, f"eleve-{scene.b}", ine=scene.b)
    mine = world.clients["registration"].get(
        "/api/me", headers={"Authorization": f"Bearer {token}"}, params={"min_position": scene.position}
    )
    assert mine.status_code == 200 and mine.json()["ine"] == scene.b
    nobody = world.passpro.token("eleve", COLLEGE, "eleve-nobody", ine=world.fresh_ine())
    missing = world.clients["registration"].get("/api/me", headers={"Authorization": f"Bearer {nobody}"})
    assert (missing.status_code, missing.json().get("error")) == (404, "student_not_found")


@pytest.mark.parametrize("path", ["/api/bonuses/{ine}", "/api/audit/students/{ine}"])
def test_the_rectorat_reads_a_student_nobody_registered_as_not_found(world, path):
    response = world.get("scoring", path.format(ine=world.fresh_ine()), RECTORAT)
    assert (response.status_code, response.json().get("error")) == (404, "student_not_found")
