"""Identifiers at the HTTP edge (SPEC §2): normalised, checked, and looked up in the reference data.

Lower case and surrounding spaces are accepted and stored normalised; every INE format is
accepted and nothing else; a UAI with any other check letter is refused; establishments
and formations outside the reference data are refused with 422. A refused request
stores nothing.
"""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import contextlib
import string

import pytest

from matrix import (
    COLLEGE,
    FORMATION,
    LYCEE,
    OTHER_LYCEE_FORMATION,
    PRINCIPAL,
    PROVISEUR,
    STAFF,
    Caller,
    World,
    cancel_body,
    college_avis_body,
    held_body,
    lycee_avis_body,
    refusal_problems,
    register_body,
    schedule_body,
    world,  # noqa: F401 - the module-scoped fixture
)
from shared.contracts.identifiers import uai_check_letter
from shared.contracts.reference import default_reference_text, parse_reference

REFERENCE = parse_reference(default_reference_text())
COLLEGES = [e for e in REFERENCE.establishments if e.type == "college"]
LYCEES = [e for e in REFERENCE.establishments if e.type == "lycee"]


def _well_formed_uai_absent_from_the_reference(seven_digits: str) -> str:
    uai = seven_digits + uai_check_letter(seven_digits)
    assert REFERENCE.get(uai) is None
    return uai


UNKNOWN_UAI = _well_formed_uai_absent_from_the_reference("0750001")
UNKNOWN_FORMATIONS = ["2400000000", "50000000000"]  # well-formed (10 and 11 digits), offered by no lycée


def refusal_of(response) -> tuple:
    """What a refusal says: status, code, the fields it names, and any fault in its body."""
    body = response.json()
    fields = frozenset(f["field"] for f in body.get("fields", []) if isinstance(f, dict))
    return response.status_code, body.get("error"), fields, refusal_problems(response.status_code, body)


@contextlib.contextmanager
def storing_nothing(world: World):
    before = world.log_state()
    yield
    assert world.log_state() == before, "a refused request stored something"


def refused_with(world: World, send, status: int, code: str, field: str) -> None:
    """`send()` is refused with `status`/`code` naming exactly `field`, in French, and stores nothing."""
    with storing_nothing(world):
        response = send()
        assert refusal_of(response) == (status, code, frozenset({field}), []), response.text


# --- normalisation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["{ine_lower}", " {ine_lower} ", "\t{ine}\n", "  {ine_lower}\r\n"])
def test_an_ine_typed_in_lower_case_or_with_spaces_is_stored_normalised(world, typed):
    ine = world.fresh_ine()
    event = world.ok(
        "registration", "/api/students", register_body(typed.format(ine=ine, ine_lower=ine.lower())), PRINCIPAL
    )["event"]
    assert event["student_ine"] == ine
    assert world.passpro.xlen(world.passpro.student_stream(ine)) == 1


@pytest.mark.parametrize("typed", [" 0752536z ", "0752536z", "\t0752536Z\n"])
def test_a_college_uai_typed_in_lower_case_or_with_spaces_is_accepted_as_the_college(world, typed):
    ine = world.fresh_ine()
    event = world.ok("registration", "/api/students", {**register_body(ine), "college_uai": typed}, PRINCIPAL)["event"]
    assert event["payload"]["college_uai"] == COLLEGE
    avis = world.ok("registration", f"/api/students/{ine}/college-avis", college_avis_body(typed), PRINCIPAL)["event"]
    assert avis["payload"]["college_uai"] == COLLEGE


def test_an_ine_in_the_path_is_normalised_too(world):
    ine = world.prepare("registered")
    event = world.ok("registration", f"/api/students/{ine.lower()}/withdrawal", {"reason": "Abandon"}, PRINCIPAL)["event"]
    assert event["student_ine"] == ine
    assert world.passpro.xlen(world.passpro.student_stream(ine)) == 2
    assert world.passpro.xlen(world.passpro.student_stream(ine.lower())) == 0


def test_lycee_uai_and_formation_code_are_normalised_on_both_sides(world):
    ine = world.prepare("registered")
    typed = {"lycee_uai": " 0752845k ", "formation_code": f" {FORMATION} "}
    scheduled = world.ok("registration", f"/api/students/{ine}/interviews", {**schedule_body(), **typed}, PRINCIPAL)
    held = world.ok("evaluation", f"/api/students/{ine}/interviews/held", {**held_body(), **typed}, STAFF)
    avis = world.ok("evaluation", f"/api/students/{ine}/lycee-avis", {**lycee_avis_body(), **typed}, PROVISEUR)
    for written in (scheduled, held, avis):
        assert (written["event"]["payload"]["lycee_uai"], written["event"]["payload"]["formation_code"]) == (LYCEE, FORMATION)
    assert held["event"]["payload"]["interview_id"] == scheduled["event"]["payload"]["interview_id"]


def test_a_campaign_given_with_spaces_is_the_campaign(world):
    ine = world.prepare("registered")
    event = world.ok("registration", f"/api/students/{ine}/withdrawal?campaign=%20{YEAR}%20", {"reason": "Abandon"}, PRINCIPAL)
    assert event["event"]["campaign"] == CAMPAIGN


# --- the three INE formats, and nothing else ---------------------------------------------------------------


def _ines_of_every_format(n: int) -> dict[str, str]:
    return {
        "9 digits + 2 letters": f"{n:09d}KB",
        "10 digits + 1 letter": f"{n:010d}K",
        "4 digits + A + 5 digits + 1 letter": f"{n % 10_000:04d}A{n % 100_000:05d}K",
    }


@pytest.mark.parametrize("ine_format", list(_ines_of_every_format(0)))
@pytest.mark.parametrize("case", ["upper", "lower"])
def test_every_ine_format_of_spec_2_is_accepted(world, ine_format, case):
    ine = _ines_of_every_format(int(world.fresh_ine()[:9]))[ine_format]
    typed = ine.lower() if case == "lower" else ine
    event = world.ok("registration", "/api/students", register_body(typed), PRINCIPAL)["event"]
    assert event["student_ine"] == ine
    again = world.ok("registration", f"/api/students/{typed}/college-avis", college_avis_body(), PRINCIPAL)["event"]
    assert again["student_ine"] == ine


NEAR_MISS_INES = {
    "10 characters": "12345678AB",
    "12 characters": "1234567890AB",
    "11 digits": "12345678901",
    "11 letters": "ABCDEFGHIJK",
    "8 digits + 3 letters": "12345678ABC",
    "a letter then a digit": "123456789A1",
    "4-A-5 format with B for A": "1234B12345C",
    "4-A-5 format ending in a digit": "1234A123456",
    "4-A-4 + 2 letters": "1234A1234BC",
    "a dash": "123456789-AB",
    "an underscore": "12345678_AB",
    "an accented letter": "123456789ÀB",
    "full-width digits": "１２３４５６７８９AB",
    "Arabic-Indic digits": "١٢٣٤٥٦٧٨٩AB",
    "a zero-width space": "123456789AB\u200b",
    "a NUL": "123456789A\x00",
    "a sharp s (upper-cases to SS)": "123456789ß",
    "a ligature (upper-cases to FF)": "123456789ﬀ",
    "a dotless i (upper-cases to I)": "1234567890ı",
    "empty": "",
    "only spaces": "   ",
    "a number": 12345678901,
}


@pytest.mark.parametrize("typed", list(NEAR_MISS_INES.values()), ids=list(NEAR_MISS_INES))
def test_an_ine_that_fits_no_format_is_refused_in_the_body(world, typed):
    refused_with(
        world,
        lambda: world.post("registration", "/api/students", {**register_body("x"), "student_ine": typed}, PRINCIPAL),
        422, "invalid_input", "student_ine",
    )


@pytest.mark.parametrize(
    "typed",
    [v for v in NEAR_MISS_INES.values() if isinstance(v, str) and v.strip() and "\x00" not in v],
    ids=[k for k, v in NEAR_MISS_INES.items() if isinstance(v, str) and v.strip() and "\x00" not in v],
)
def test_an_ine_that_fits_no_format_is_refused_in_the_path(world, typed):
    refused_with(
        world,
        lambda: world.post("registration", f"/api/students/{typed}/withdrawal", {"reason": "Abandon"}, PRINCIPAL),
        422, "invalid_input", "ine",
    )


# --- UAI check letters -------------------------------------------------------------------------------------


def test_the_reference_data_uais_all_carry_their_check_letter():
    assert all(e.uai[7] == uai_check_letter(e.uai[:7]) for e in REFERENCE.establishments)


def _wrong_letters(uai: str) -> list[str]:
    return [uai[:7] + letter for letter in string.ascii_uppercase if letter != uai[7]]


@pytest.mark.parametrize("college", COLLEGES, ids=lambda e: e.uai)
def test_a_college_uai_with_any_other_check_letter_is_refused(world, college):
    principal = Caller("principal", "principal", college.uai)
    with storing_nothing(world):
        for wrong in [*_wrong_letters(college.uai), *(w.lower() for w in _wrong_letters(college.uai)[:3])]:
            response = world.post("registration", "/api/students", register_body(world.fresh_ine(), wrong), principal)
            assert refusal_of(response) == (422, "invalid_input", {"college_uai"}, []), wrong
    world.ok("registration", "/api/students", register_body(world.fresh_ine(), college.uai.lower()), principal)


@pytest.mark.parametrize("lycee", LYCEES, ids=lambda e: e.uai)
def test_a_lycee_uai_with_any_other_check_letter_is_refused(world, lycee):
    ine = world.prepare("registered")
    formation = lycee.formations[0].code
    with storing_nothing(world):
        for wrong in _wrong_letters(lycee.uai):
            response = world.post("registration", f"/api/students/{ine}/interviews", schedule_body(wrong, formation), PRINCIPAL)
            assert refusal_of(response) == (422, "invalid_input", {"lycee_uai"}, []), wrong
    world.ok("registration", f"/api/students/{ine}/interviews", schedule_body(lycee.uai.lower(), formation), PRINCIPAL)


# --- unknown establishments and formations -------------------------------------------------------------------

# write, situation, who, body, what the reference data lacks, expected code and field
UNKNOWN_REFERENCES = [
    ("/api/students", "fresh", PRINCIPAL, lambda ine: register_body(ine, UNKNOWN_UAI), "unknown collège", "unknown_college", "college_uai"),
    ("/api/students", "fresh", PRINCIPAL, lambda ine: register_body(ine, LYCEE), "a lycée as the collège", "unknown_college", "college_uai"),
    ("/api/students/{ine}/college-avis", "registered", PRINCIPAL, lambda _: college_avis_body(UNKNOWN_UAI), "unknown collège", "unknown_college", "college_uai"),
    ("/api/students/{ine}/college-avis", "registered", PRINCIPAL, lambda _: college_avis_body(LYCEE), "a lycée as the collège", "unknown_college", "college_uai"),
]
for _path, _situation, _who, _body in [
    ("/api/students/{ine}/interviews", "registered", PRINCIPAL, schedule_body),
    ("/api/students/{ine}/interviews/cancel", "scheduled", PRINCIPAL, cancel_body),
    ("evaluation:/api/students/{ine}/interviews/held", "scheduled", STAFF, held_body),
    ("evaluation:/api/students/{ine}/interviews/cancel", "scheduled", STAFF, cancel_body),
    ("evaluation:/api/students/{ine}/lycee-avis", "held", PROVISEUR, lycee_avis_body),
]:
    UNKNOWN_REFERENCES += [
        (_path, _situation, _who, lambda _, b=_body: b(UNKNOWN_UAI, FORMATION), "unknown lycée", "unknown_lycee", "lycee_uai"),
        (_path, _situation, _who, lambda _, b=_body: b(COLLEGE, FORMATION), "a collège as the lycée", "unknown_lycee", "lycee_uai"),
        (_path, _situation, _who, lambda _, b=_body: b(LYCEE, OTHER_LYCEE_FORMATION), "a formation of another lycée", "formation_not_offered", "formation_code"),
    ] + [
        (_path, _situation, _who, lambda _, b=_body, f=f: b(LYCEE, f), f"formation {f} offered nowhere", "formation_not_offered", "formation_code")
        for f in UNKNOWN_FORMATIONS
    ]


@pytest.mark.parametrize(
    ("path", "situation", "who", "body", "code", "field"),
    [row[:4] + row[5:] for row in UNKNOWN_REFERENCES],
    ids=[f"{row[0].split(':')[0] if ':' in row[0] else 'registration'} {row[0].split('{ine}')[-1] or 'register'}: {row[4]}" for row in UNKNOWN_REFERENCES],
)
def test_a_write_naming_what_the_reference_data_lacks_is_refused_with_422(world, path, situation, who, body, code, field):
    service, _, path = path.rpartition(":")
    ine = world.prepare(situation)
    refused_with(
        world,
        lambda: world.post(service or "registration", path.format(ine=ine), body(ine), who),
        422, code, field,
    )
