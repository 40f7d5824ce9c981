"""Identifier types of SPEC §2 (INE, UAI, formation code, campaign) with their checks.

Inputs are normalised (spaces removed, upper-cased) before they are checked, so
`" 0750654d "` and `"0750654D"` name the same establishment. An identifier is a string
(SPEC §5.1): a number is refused, never turned into one.
"""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

# The académie's clock: a campaign's rentrée (1 September) and every moment shown to people are Paris time.
PARIS = ZoneInfo("Europe/Paris")
UAI_CHECK_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"

_INE_PATTERN = re.compile(r"^(?:[0-9]{9}[A-Z]{2}|[0-9]{10}[A-Z]|[0-9]{4}A[0-9]{5}[A-Z])$")
_UAI_PATTERN = re.compile(r"^[0-9]{7}[A-Z]$")
_FORMATION_PATTERN = re.compile(r"^[0-9]{10,11}$")
_CAMPAIGN_PATTERN = re.compile(r"^[0-9]{4}$")


def normalise(value: object) -> object:
    """Trim, drop inner spaces and upper-case a string; leave anything else (a number too) to the type check."""
    if isinstance(value, str):
        if not value.isalnum():
            value = "".join(value.split())
        # Only ASCII is upper-cased: "ß".upper() is "SS", which would forge a valid INE; the rest fails the pattern.
        return value.upper() if value.isascii() else value
    return value


def uai_check_letter(seven_digits: str) -> str:
    return UAI_CHECK_LETTERS[int(seven_digits) % 23]


def check_ine(value: str) -> str:
    if not _INE_PATTERN.match(value):
        raise ValueError("INE invalide : 11 caractères attendus (ex. 123456789AB, 1234567890A ou 1234A12345B)")
    return value


def check_uai(value: str) -> str:
    if not _UAI_PATTERN.match(value):
        raise ValueError("UAI invalide : 7 chiffres suivis d'une lettre attendus (ex. 0750654D)")
    if uai_check_letter(value[:7]) != value[7]:
        raise ValueError("UAI invalide : la lettre de contrôle ne correspond pas aux chiffres")
    return value


def check_formation_code(value: str) -> str:
    if not _FORMATION_PATTERN.match(value):
        raise ValueError("Code de formation invalide : 10 ou 11 chiffres attendus")
    return value


def check_campaign(value: str) -> str:
    if not _CAMPAIGN_PATTERN.match(value):
        raise ValueError("Campagne invalide : une année sur 4 chiffres attendue (ex. 2027)")
    return value


def _is_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("chaîne de caractères attendue")
    return value


def _documented(pattern: re.Pattern[str], description: str, example: str) -> WithJsonSchema:
    """The identifier as the OpenAPI documents show it (SPEC §5.1): its canonical form."""
    return WithJsonSchema({"type": "string", "pattern": pattern.pattern, "description": description, "examples": [example]})


INE = Annotated[
    str, BeforeValidator(normalise), AfterValidator(_is_str), AfterValidator(check_ine),
    _documented(_INE_PATTERN, "INE de l'élève (11 caractères)", "123456789AB"),
]
UAI = Annotated[
    str, BeforeValidator(normalise), AfterValidator(_is_str), AfterValidator(check_uai),
    _documented(_UAI_PATTERN, "UAI : 7 chiffres et la lettre de contrôle (l'établissement doit figurer au référentiel)",
                "0752536Z"),
]
FormationCode = Annotated[
    str, BeforeValidator(normalise), AfterValidator(_is_str), AfterValidator(check_formation_code),
    _documented(_FORMATION_PATTERN, "Code de formation (MEF, 10 ou 11 chiffres)", "2473121131"),
]
Campaign = Annotated[
    str, BeforeValidator(normalise), AfterValidator(_is_str), AfterValidator(check_campaign),
    _documented(_CAMPAIGN_PATTERN, "Campagne : l'année de la rentrée", "2027"),
]
