"""Request pieces every service's API uses: the common body fields, path and query types, reference checks."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict

from shared.contracts.errors import InvalidInput
from shared.contracts.identifiers import INE, Campaign
from shared.contracts.reference import ReferenceData
from shared.runtime.openapi import POSITION_PATTERN

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


class WriteBody(BaseModel):
    """Fields every write body may carry besides its payload."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: UUID | None = None

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
