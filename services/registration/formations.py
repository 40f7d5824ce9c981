"""Discovering the formations (SPEC §6): GET /api/formations and the pages /formations and /formations/{code},
read from the reference data's catalogue, for any signed-in user — the student first, on a phone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import Field

from shared.contracts.reference import (
    TRANSIT_PLANNER_URL,
    Coordinates,
    Establishment,
    Formation,
    FormationSheet,
    ReferenceData,
    Stop,
    journey_url,
)
from shared.contracts.identifiers import UAI, FormationCode
from shared.domain.errors import Refusal
from shared.fr.transit import stop_label
from shared.runtime.http.app import runtime
from shared.runtime.http.guard import API_DEPENDENCIES
from shared.runtime.http.openapi import Answer, Page, read
from shared.web.pages import web
from shared.web.session import SignInRequired

router = APIRouter(prefix="/api", tags=["registration"], dependencies=API_DEPENDENCIES)
pages = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """The API route and the pages, on the registration service (after its pages, whose `Web` they use)."""
    app.include_router(router)
    app.include_router(pages)


# --- what the API answers -------------------------------------------------------------------------------------


class LyceeOffer(Answer):
    """A lycée offering the formation: where it is and how to get there."""

    uai: UAI
    name: str
    places: int = Field(ge=0)
    address: str
    coordinates: Coordinates | None
    access: list[Stop] = Field(description="Les arrêts de transport les plus proches, le plus proche d'abord")
    journey_url: str | None = Field(
        description="Un calculateur d'itinéraire avec le lycée pour seule destination (aucune adresse de départ)"
    )


class FormationSheetOut(Answer):
    code: FormationCode
    label: str
    description: str = Field(description="Le métier : ce qu'on y fait, où l'on travaille")
    after: list[str] = Field(description="Après la formation : études possibles, métiers")
    onisep_url: str = Field(description="La fiche ONISEP de la formation, ou la recherche ONISEP sur son nom")
    lycees: list[LyceeOffer]


class FormationsPage(Page[FormationSheetOut]):
    version: str = Field(description="Version du référentiel")


def offer(lycee: Establishment, formation: Formation) -> dict[str, Any]:
    return {
        "uai": lycee.uai,
        "name": lycee.name,
        "places": formation.places,
        "address": lycee.address,
        "coordinates": lycee.coordinates.model_dump() if lycee.coordinates else None,
        "access": [stop.model_dump(mode="json") for stop in lycee.access],
        "journey_url": journey_url(lycee),
    }


def formation_item(reference: ReferenceData, sheet: FormationSheet) -> dict[str, Any]:
    return {
        **sheet.model_dump(mode="json"),
        "lycees": [offer(lycee, formation) for lycee, formation in reference.offering(sheet.code)],
    }


def formation_items(reference: ReferenceData) -> list[dict[str, Any]]:
    """Every formation of the catalogue, as the API and the pages show it, by label."""
    return [formation_item(reference, sheet) for sheet in sorted(reference.formations, key=lambda f: f.label)]


@router.get(
    "/formations", operation_id="list_formations", response_model=None,
    responses=read(FormationsPage, refused=(), description="Les formations du dispositif et les lycées qui les proposent"),
    summary="Les formations : le métier, la suite, la fiche ONISEP, les lycées (places, adresse, accès)",
)
async def list_formations(request: Request) -> dict:
    reference = runtime(request).reference
    items = formation_items(reference)
    return {"items": items, "total": len(items), "limit": len(items), "offset": 0, "version": reference.version}


# --- the pages ------------------------------------------------------------------------------------------------


class FormationNotFound(Refusal):
    """404: no formation of the catalogue has this code."""

    status = 404

    def __init__(self) -> None:
        super().__init__("formation_not_found", "Cette formation n'existe pas dans Passpro.")


def _reader(request: Request):
    """Anyone signed in to this service reads the formations (a student as well as the collège's staff)."""
    w = web(request)
    who = w.visitor(request)
    if who is None:
        raise SignInRequired()
    return w, who


def is_cap(sheet: dict[str, Any]) -> bool:
    return sheet["label"].startswith("CAP")


@pages.get("/formations")
async def formations_page(request: Request) -> Response:
    w, who = _reader(request)
    items = formation_items(runtime(request).reference)
    groups = [
        ("Après la 3e, en 3 ans : le bac professionnel", [f for f in items if not is_cap(f)]),
        ("Après la 3e, en 2 ans : le CAP", [f for f in items if is_cap(f)]),
    ]
    context = {"who": who, "groups": [(title, found) for title, found in groups if found], "current": "formations"}
    return w.render(request, "formations/list.html", context)


@pages.get("/formations/{code}")
async def formation_page(code: str, request: Request) -> Response:
    w, who = _reader(request)
    reference = runtime(request).reference
    sheet = reference.formation(code)
    if sheet is None:
        raise FormationNotFound()
    context = {
        "who": who, "formation": formation_item(reference, sheet),
        "stop_label": lambda stop: stop_label(Stop.model_validate(stop)),
        "transit_planner_url": TRANSIT_PLANNER_URL, "is_search": "/recherche" in sheet.onisep_url,
        "current": "formations",
    }
    return w.render(request, "formations/formation.html", context)
