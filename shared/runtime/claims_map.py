"""Who a person signed in by the académie's provider is in Passpro (SPEC §8): the claims mapping.

The provider's claims (from the ID token and userinfo, or a provider access token) name the person's
establishments and functions in the ministry's directory vocabulary; the mapping file
(`PASSPRO_OIDC_CLAIMS_MAP`, JSON) says how those become one Passpro role and one establishment.
Without a file the ministry-style default below applies:

- `FrEduRneResp`, else `FrEduRne`: the establishments, values `UAI$...` (the part before the first `$`);
  only those of Passpro's reference data count;
- the first rule whose claim holds its value gives the role: group `passpro-rectorat` → rectorat (no
  establishment), `FrEduFonctAdm` = `DIR` → the head of the establishment (`chef_etablissement`: principal of
  a collège, proviseur of a lycée), group `passpro-referents` → référent, group `passpro-lycee` → lycée staff.

No rule, no establishment of the right kind, or several of them: no role (`Unmapped`, with the French reason;
for several establishments, the role each would give, which the pages offer to choose from).
Pure: no I/O but `load_claims_map`, which reads the file once at start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.contracts.reference import ReferenceData

HEAD = "chef_etablissement"  # principal in a collège, proviseur in a lycée
HEAD_ROLES = {"college": "principal", "lycee": "proviseur"}
ROLE_ESTABLISHMENTS: dict[str, tuple[str, ...]] = {
    "principal": ("college",), "referent": ("college",), "lycee_staff": ("lycee",), "proviseur": ("lycee",),
    "rectorat": (), HEAD: ("college", "lycee"),
}
MAX_USER_ID = 128

SUPPORT = "Si vous devriez y avoir accès, adressez-vous à la cellule Passpro du rectorat."


class RoleRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["principal", "referent", "lycee_staff", "proviseur", "rectorat", "chef_etablissement"]
    claim: str = Field(min_length=1)
    value: str = Field(min_length=1)  # the claim equals it, or (a list) contains it


class EstablishmentClaims(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claims: list[str] = Field(min_length=1)  # the first present and non-empty one is read
    separator: str = "$"  # a value is `UAI<separator>...`


class ClaimsMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = "sub"  # the claim that identifies the person (the actor's user_id in the log)
    establishment: EstablishmentClaims = EstablishmentClaims(claims=["FrEduRneResp", "FrEduRne"])
    roles: list[RoleRule] = Field(
        default_factory=lambda: [
            RoleRule(role="rectorat", claim="groups", value="passpro-rectorat"),
            RoleRule(role=HEAD, claim="FrEduFonctAdm", value="DIR"),
            RoleRule(role="referent", claim="groups", value="passpro-referents"),
            RoleRule(role="lycee_staff", claim="groups", value="passpro-lycee"),
        ],
        min_length=1,
    )


@dataclass(frozen=True)
class Mapped:
    user_id: str
    role: str
    uai: str | None


@dataclass(frozen=True)
class Unmapped:
    reason: Literal["no_user_id", "no_role", "no_establishment", "several_establishments"]
    message: str  # French, for the 403 page
    choices: tuple[Mapped, ...] = ()  # several establishments: one Mapped each, for a choice page to offer


def load_claims_map(path: str | Path | None) -> ClaimsMap:
    """The mapping file's rules, or the ministry-style default without a file; a bad file stops the start-up."""
    if not path:
        return ClaimsMap()
    try:
        return ClaimsMap.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise SystemExit(f"PASSPRO_OIDC_CLAIMS_MAP ({path}): not a valid claims mapping file: {exc}") from None


def _values(claims: dict[str, object], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _establishments(rules: ClaimsMap, claims: dict[str, object]) -> list[str]:
    for name in rules.establishment.claims:
        values = _values(claims, name)
        if values:
            uais = [value.split(rules.establishment.separator, 1)[0].strip().upper() for value in values]
            return list(dict.fromkeys(uai for uai in uais if uai))
    return []


def map_claims(rules: ClaimsMap, claims: dict[str, object], reference: ReferenceData) -> Mapped | Unmapped:
    """The one role and establishment the claims give, or why they give none."""
    user_id = claims.get(rules.user_id)
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_USER_ID:
        return Unmapped("no_user_id", "Le fournisseur d'identité n'a pas transmis d'identifiant utilisable. " + SUPPORT)
    rule = next((r for r in rules.roles if r.value in _values(claims, r.claim)), None)
    if rule is None:
        return Unmapped("no_role", "Votre compte académique ne vous donne aucun rôle dans Passpro. " + SUPPORT)
    if rule.role == "rectorat":
        return Mapped(user_id, "rectorat", None)
    kinds = ROLE_ESTABLISHMENTS[rule.role]
    found = [uai for uai in _establishments(rules, claims) if (e := reference.get(uai)) is not None and e.type in kinds]
    if not found:
        return Unmapped(
            "no_establishment",
            "Votre compte académique ne désigne aucun établissement participant à Passpro pour votre fonction. "
            + SUPPORT,
        )
    each = tuple(
        Mapped(user_id, HEAD_ROLES[reference.get(uai).type] if rule.role == HEAD else rule.role, uai) for uai in found
    )
    if len(each) > 1:
        names = ", ".join(reference.get(uai).name for uai in found)
        return Unmapped(
            "several_establishments",
            f"Votre compte académique désigne plusieurs établissements participant à Passpro ({names}) : "
            "Passpro ne peut pas choisir pour vous au nom duquel vous agissez. " + SUPPORT,
            each,
        )
    return each[0]
