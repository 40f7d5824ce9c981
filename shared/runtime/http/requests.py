"""Request pieces every service's API uses: the common body fields, path and query types, reference checks."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict
from pydantic_core import PydanticCustomError

from shared.domain.errors import InvalidInput
from shared.contracts.events import UtcDatetime
from shared.contracts.identifiers import INE, Campaign
from shared.contracts.reference import ReferenceData
from shared.runtime.http.openapi import POSITION_PATTERN

IneInPath = Annotated[INE, Path(description="INE de l'élève", examples=["123456789AB"])]
CampaignQuery = Annotated[Campaign | None, Query(description="Campagne (par défaut : celle en vigueur)")]
MAX_ENTRY_ID_PART = 2**64 - 1


def check_position(value: str | None) -> str | None:
    """A Redis stream entry id `ms-seq`, each part an unsigned 64-bit number."""
    if value is not None and any(int(part) > MAX_ENTRY_ID_PART for part in value.split("-")):
        raise ValueError("position du journal hors limites")
    return value


MinPositionQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
        description="Position du journal que la vue doit avoir atteinte avant de répondre",
        json_schema_extra={"pattern": POSITION_PATTERN},  # documents the 64-bit bound check_position holds
    ),
    AfterValidator(check_position),
]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


_RFC3339 = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$")
RFC3339_MESSAGE = "Date et heure attendues au format RFC 3339 avec fuseau (ex. 2027-03-15T14:00:00+01:00)."


def _rfc3339(value: object) -> object:
    """A time in a JSON body is an RFC 3339 string with its offset (SPEC §5.1): a number, or a string of
    digits, would otherwise be read as a Unix time. A page hands over the datetime it read from its form."""
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.match(value.strip())):
        return value
    raise PydanticCustomError("rfc3339", RFC3339_MESSAGE)


def _json_integer(value: object) -> object:
    """JSON has one number type: 3000.0 is the integer 3000 (JSON Schema says so too); 3000.5 and "3000" are not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Time and EventId leave the strict mode of WriteBody only to parse their JSON string; nothing else is coerced.
Time = Annotated[UtcDatetime, Strict(False), BeforeValidator(_rfc3339)]
EventId = Annotated[UUID, Strict(False)]
Integer = Annotated[int, BeforeValidator(_json_integer)]


class WriteBody(BaseModel):
    """Fields every write body may carry besides its payload.

    Strict (SPEC §5.1): a boolean is `true`/`false`, a number a JSON number, an identifier or a code a
    string, a time an RFC 3339 string with offset (`Time`); nothing is coerced and stored. Identifiers
    are still trimmed and upper-cased. Pages convert their form's strings before they build a body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    event_id: EventId | None = None

    def request_fields(self) -> dict:
        """What identifies the request for idempotency: everything but the event id."""
        return self.model_dump(mode="json", exclude={"event_id"})


def require_college(reference: ReferenceData, uai: str, field: str = "college_uai") -> None:
    if reference.college(uai) is None:
        raise InvalidInput("unknown_college", "Collège inconnu du référentiel.", field)


def require_formation(reference: ReferenceData, lycee_uai: str, formation_code: str) -> None:
    lycee = reference.lycee(lycee_uai)
    if lycee is None:
        raise InvalidInput("unknown_lycee", "Lycée inconnu du référentiel.", "lycee_uai")
    if not lycee.offers(formation_code):
        raise InvalidInput(
            "formation_not_offered", "Cette formation n'est pas proposée par ce lycée dans Passpro.", "formation_code"
        )
