"""SPEC §2: identifiers are normalised (trimmed, upper-cased), then checked; the reference data is valid."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.contracts.identifiers import INE, UAI, Campaign, FormationCode, uai_check_letter
from shared.contracts.reference import default_reference_text, parse_reference

ine = TypeAdapter(INE)
uai = TypeAdapter(UAI)
formation = TypeAdapter(FormationCode)
campaign = TypeAdapter(Campaign)


# --- INE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "123456789AB",  # 9 digits + 2 letters
        "1234567890A",  # 10 digits + 1 letter
        "1234A12345B",  # 4 digits + A + 5 digits + 1 letter
    ],
)
def test_each_of_the_three_ine_formats_is_accepted(value: str) -> None:
    assert ine.validate_python(value) == value


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("123456789ab", "123456789AB"),
        ("  1234567890a ", "1234567890A"),
        ("\t1234a12345b\n", "1234A12345B"),
        ("123 456 789 AB", "123456789AB"),
    ],
)
def test_an_ine_is_trimmed_and_upper_cased_before_it_is_checked(raw: str, normalised: str) -> None:
    assert ine.validate_python(raw) == normalised


@pytest.mark.parametrize(
    "value",
    [
        "",
        "12345678AB",  # one digit short
        "1234567890AB",  # one character too many
        "12345678ABC",  # 8 digits + 3 letters
        "12345678901",  # no letter at all
        "123456789A1",  # ends with a digit
        "1234B12345C",  # third format needs an A in fifth place
        "1234A1234BC",  # third format with only 4 digits after the A
        "A23456789AB",  # starts with a letter
        "123456789ÉB",  # accented letter
        "123456789-B",
        None,
        12345678901,  # a number is not a string (SPEC §5.1)
    ],
)
def test_near_misses_of_the_ine_formats_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        ine.validate_python(value)


# --- UAI ------------------------------------------------------------------------------


def test_the_uai_check_letter_follows_the_rule_of_spec_section_2() -> None:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    assert uai_check_letter("0750654") == letters[750654 % 23] == "D"
    assert uai_check_letter("0000000") == "A"
    assert uai_check_letter("0000022") == "Z"
    assert uai_check_letter("0000023") == "A"


@pytest.mark.parametrize("value", ["0750654D", "0752536Z", "0752845K", "0000000A", "9999999" + "ABCDEFGHJKLMNPRSTUVWXYZ"[9999999 % 23]])
def test_a_uai_with_its_check_letter_is_accepted(value: str) -> None:
    assert uai.validate_python(value) == value


def test_a_uai_is_normalised_before_its_letter_is_checked() -> None:
    assert uai.validate_python(" 0750654d ") == "0750654D"


@pytest.mark.parametrize(
    "value",
    [
        "0750654E",  # wrong check letter
        "0750654C",  # wrong check letter
        "0750654I",  # I is never a check letter
        "075065D",  # six digits
        "07506540D",  # eight digits
        "0750654",  # no letter
        "D0750654",  # letter first
        "0750654DD",
        "",
        None,
    ],
)
def test_a_uai_with_a_wrong_or_missing_check_letter_is_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        uai.validate_python(value)


def test_every_digit_string_has_exactly_one_accepted_check_letter() -> None:
    digits = "0751528"
    accepted = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if _valid_uai(digits + c)]
    assert accepted == [uai_check_letter(digits)]


def _valid_uai(value: str) -> bool:
    try:
        uai.validate_python(value)
    except ValidationError:
        return False
    return True


# --- formation codes and campaigns ----------------------------------------------------


@pytest.mark.parametrize("value", ["2473121131", "50023405211", " 2473121131 "])
def test_formation_codes_of_10_or_11_digits_are_accepted(value: str) -> None:
    assert formation.validate_python(value) == value.strip()


@pytest.mark.parametrize("value", ["247312113", "247312113100", "247312113A", "2473-21131", "", None])
def test_formation_codes_that_are_not_10_or_11_digits_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        formation.validate_python(value)


@pytest.mark.parametrize(("value", "expected"), [("2027", "2027"), (" 2028 ", "2028")])
def test_a_campaign_is_a_four_digit_year(value: object, expected: str) -> None:
    assert campaign.validate_python(value) == expected


@pytest.mark.parametrize("value", ["27", "20277", "deux mille vingt-sept", "2027-2028", "", None])
def test_a_campaign_that_is_not_a_four_digit_year_is_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        campaign.validate_python(value)


@pytest.mark.parametrize(
    ("adapter", "value"),
    [(ine, 12345678901), (uai, 750654), (formation, 2473121131), (campaign, 2027), (campaign, 2027.0), (uai, True)],
)
def test_an_identifier_is_a_string_never_a_number_made_into_one(adapter: TypeAdapter, value: object) -> None:
    """SPEC §5.1: `"formation_code": 2473121131` is refused, not read as "2473121131"."""
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python(value)
    assert caught.value.errors()[0]["type"] == "string_type"


# --- reference data -------------------------------------------------------------------


def test_the_shipped_reference_data_parses() -> None:
    reference = parse_reference(default_reference_text())
    assert reference.academie == "paris"
    kinds = Counter(e.type for e in reference.establishments)
    assert kinds["college"] >= 5 and kinds["lycee"] >= 5  # SPEC §2: at least five of each
    codes = {f.code for e in reference.establishments for f in e.formations}
    assert len(codes) >= 12  # SPEC §2: a dozen formations
    assert all(not e.formations for e in reference.establishments if e.type == "college")
    assert all(e.formations for e in reference.establishments if e.type == "lycee")


def test_every_uai_of_the_reference_file_has_a_valid_check_letter() -> None:
    raw = json.loads(default_reference_text())
    uais = [e["uai"] for e in raw["establishments"]]
    assert len(uais) == len(set(uais))
    for value in uais:
        assert len(value) == 8 and value[:7].isdigit(), value
        assert value[7] == uai_check_letter(value[:7]), f"{value}: check letter should be {uai_check_letter(value[:7])}"


def test_the_reference_data_finds_establishments_by_type() -> None:
    reference = parse_reference(default_reference_text())
    college = next(e for e in reference.establishments if e.type == "college")
    lycee = next(e for e in reference.establishments if e.type == "lycee")
    assert reference.college(college.uai) == college and reference.lycee(college.uai) is None
    assert reference.lycee(lycee.uai) == lycee and reference.college(lycee.uai) is None
    assert lycee.offers(lycee.formations[0].code)
    assert not lycee.offers("9999999999")
    assert reference.get("0750654D") is None  # a valid UAI, but not in Passpro


def test_reference_data_naming_an_uai_twice_is_refused() -> None:
    raw = json.loads(default_reference_text())
    raw["establishments"].append(raw["establishments"][0])
    with pytest.raises(ValidationError):
        parse_reference(json.dumps(raw))


def test_reference_data_with_a_wrong_check_letter_is_refused() -> None:
    raw = json.loads(default_reference_text())
    first = raw["establishments"][0]["uai"]
    wrong = next(c for c in "ABCDEFGHJKLMNPRSTUVWXYZ" if c != first[7])
    raw["establishments"][0]["uai"] = first[:7] + wrong
    with pytest.raises(ValidationError):
        parse_reference(json.dumps(raw))
