"""Reference data of SPEC §2: the collèges, the lycées and the formations each lycée offers."""

from __future__ import annotations

from importlib.resources import files
from typing import Literal

from pydantic import Field, model_validator

from shared.contracts.events import Contract, Text
from shared.contracts.identifiers import UAI, FormationCode


class Formation(Contract):
    code: FormationCode
    label: Text(200)
    places: int = Field(ge=0, le=10_000)


class Establishment(Contract):
    uai: UAI
    name: Text(200)
    type: Literal["college", "lycee"]
    address: Text(300)
    formations: tuple[Formation, ...] = ()

    def offers(self, formation_code: str) -> bool:
        return any(f.code == formation_code for f in self.formations)


class ReferenceData(Contract):
    version: Text(40)
    academie: Text(40)
    establishments: tuple[Establishment, ...]

    @model_validator(mode="after")
    def _unique_and_consistent(self) -> ReferenceData:
        uais = [e.uai for e in self.establishments]
        if len(set(uais)) != len(uais):
            raise ValueError("an UAI appears twice in the reference data")
        for e in self.establishments:
            if e.type == "college" and e.formations:
                raise ValueError(f"collège {e.uai} cannot offer formations")
        return self

    def get(self, uai: str) -> Establishment | None:
        return next((e for e in self.establishments if e.uai == uai), None)

    def college(self, uai: str) -> Establishment | None:
        e = self.get(uai)
        return e if e and e.type == "college" else None

    def lycee(self, uai: str) -> Establishment | None:
        e = self.get(uai)
        return e if e and e.type == "lycee" else None


def default_reference_text() -> str:
    return files("shared.contracts").joinpath("reference/paris.json").read_text(encoding="utf-8")


def parse_reference(text: str) -> ReferenceData:
    return ReferenceData.model_validate_json(text)
