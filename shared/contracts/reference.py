"""Reference data of SPEC §2 and §6: the collèges, the lycées (where they are, how to get there) and the
formations each lycée offers, with what each formation is about (the catalogue a student reads)."""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, StringConstraints, model_validator

from shared.contracts.events import Contract, Text
from shared.contracts.identifiers import UAI, FormationCode


class Formation(Contract):
    code: FormationCode
    label: Text(200)
    places: int = Field(ge=0, le=10_000)


class Coordinates(Contract):
    """WGS 84 degrees, as a map or a journey planner reads them."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


TransitMode = Literal["metro", "rer", "tram", "bus"]
LineName = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,5}$")]


class Stop(Contract):
    """A public-transport stop near an establishment, e.g. métro Ledru-Rollin, line 8."""

    mode: TransitMode
    stop: Text(100)
    lines: tuple[LineName, ...] = Field(min_length=1, max_length=20)


OnisepUrl = Annotated[str, StringConstraints(pattern=r"^https://www\.onisep\.fr/[^\s]*$", max_length=500)]


class FormationSheet(Contract):
    """What a formation is about, once per formation code whatever the lycées offering it (SPEC §6)."""

    code: FormationCode
    label: Text(200)
    description: Text(1500) = Field(description="Le métier : ce qu'on y fait, où l'on travaille")
    after: tuple[Text(400), ...] = Field(min_length=1, max_length=10, description="Après : études, métiers")
    onisep_url: OnisepUrl


class Source(Contract):
    """Where one kind of reference data came from, and when it was gathered or checked."""

    covers: Text(100)
    origin: Text(1000)
    checked: Text(40)


class Establishment(Contract):
    uai: UAI
    name: Text(200)
    type: Literal["college", "lycee"]
    address: Text(300)
    coordinates: Coordinates | None = None
    access: tuple[Stop, ...] = Field(default=(), max_length=10, description="Les arrêts les plus proches d'abord")
    formations: tuple[Formation, ...] = ()

    def offers(self, formation_code: str) -> bool:
        return any(f.code == formation_code for f in self.formations)


class ReferenceData(Contract):
    version: Text(40)
    academie: Text(40)
    establishments: tuple[Establishment, ...]
    # The catalogue of the formations offered (empty in files written before version 2027.2).
    formations: tuple[FormationSheet, ...] = ()
    sources: tuple[Source, ...] = ()

    @model_validator(mode="after")
    def _unique_and_consistent(self) -> ReferenceData:
        uais = [e.uai for e in self.establishments]
        if len(set(uais)) != len(uais):
            raise ValueError("an UAI appears twice in the reference data")
        for e in self.establishments:
            if e.type == "college" and e.formations:
                raise ValueError(f"collège {e.uai} cannot offer formations")
        sheets = {f.code: f for f in self.formations}
        if len(sheets) != len(self.formations):
            raise ValueError("a formation code appears twice in the formations' catalogue")
        if sheets:  # a catalogue, when there is one, describes every formation offered, under the same label
            for e in self.establishments:
                for f in e.formations:
                    if f.code not in sheets:
                        raise ValueError(f"formation {f.code} offered by {e.uai} is missing from the catalogue")
                    if f.label != sheets[f.code].label:
                        raise ValueError(f"formation {f.code}: {e.uai} and the catalogue label it differently")
        return self

    def get(self, uai: str) -> Establishment | None:
        return next((e for e in self.establishments if e.uai == uai), None)

    def college(self, uai: str) -> Establishment | None:
        e = self.get(uai)
        return e if e and e.type == "college" else None

    def lycee(self, uai: str) -> Establishment | None:
        e = self.get(uai)
        return e if e and e.type == "lycee" else None

    def formation(self, code: str) -> FormationSheet | None:
        return next((f for f in self.formations if f.code == code), None)

    def offering(self, code: str) -> list[tuple[Establishment, Formation]]:
        """The lycées offering a formation, each with its offer (places), by name."""
        found = [(e, f) for e in self.establishments for f in e.formations if f.code == code]
        return sorted(found, key=lambda pair: pair[0].name)


# A journey planner with the destination only: the student types where they leave from on the planner's
# site, so Passpro never asks for nor stores a home address (SPEC §6). OpenStreetMap: open data, no account.
JOURNEY_PLANNER = "https://www.openstreetmap.org/directions"
# Île-de-France Mobilités' planner (métro, RER, tram, bus): it takes no destination in its address, so the
# pages show the lycée's address beside this link.
TRANSIT_PLANNER_URL = "https://www.iledefrance-mobilites.fr/itineraires"


def journey_url(establishment: Establishment) -> str | None:
    """The journey planner's page with the establishment as destination (None without coordinates)."""
    if establishment.coordinates is None:
        return None
    point = f"{establishment.coordinates.lat:.5f},{establishment.coordinates.lon:.5f}"
    return f"{JOURNEY_PLANNER}?to={quote(point, safe='')}"


def default_reference_text() -> str:
    return files("shared.contracts").joinpath("reference/paris.json").read_text(encoding="utf-8")


def parse_reference(text: str) -> ReferenceData:
    return ReferenceData.model_validate_json(text)
