"""The reference data a student reads (SPEC §6): every lycée can be found and reached, every formation offered is
described, and the journey planner's link names the lycée as destination only."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from shared.contracts.reference import (
    JOURNEY_PLANNER,
    default_reference_text,
    journey_url,
    parse_reference,
)
from shared.fr.transit import lines_text, stop_label

REFERENCE = parse_reference(default_reference_text())
LYCEES = [e for e in REFERENCE.establishments if e.type == "lycee"]
OFFERED = {f.code for e in LYCEES for f in e.formations}
# Paris intra-muros, with a little margin (Bois de Boulogne to Bois de Vincennes, Porte de la Chapelle to Cité U).
PARIS_LAT = (48.80, 48.91)
PARIS_LON = (2.22, 2.47)


def test_the_version_says_the_file_has_the_student_data() -> None:
    assert REFERENCE.version == "2027.3"


@pytest.mark.parametrize("lycee", LYCEES, ids=lambda e: e.uai)
def test_every_lycee_is_in_paris_and_has_a_stop_nearby(lycee) -> None:
    assert lycee.coordinates is not None, lycee.name
    assert PARIS_LAT[0] < lycee.coordinates.lat < PARIS_LAT[1], lycee.name
    assert PARIS_LON[0] < lycee.coordinates.lon < PARIS_LON[1], lycee.name
    assert lycee.access, lycee.name
    assert all(stop.lines and stop.stop for stop in lycee.access)
    assert lycee.address.endswith("Paris") and " 750" in lycee.address


def test_every_formation_offered_has_its_sheet_in_french() -> None:
    sheets = {f.code: f for f in REFERENCE.formations}
    assert set(sheets) == OFFERED  # one sheet per formation, none describing a formation no one offers
    for code, sheet in sheets.items():
        assert len(sheet.description) >= 150 and sheet.description.endswith("."), code
        assert "Tu " in sheet.description, code  # written to the student
        assert sheet.after and all(item.endswith(".") for item in sheet.after), code
        assert sheet.onisep_url.startswith("https://www.onisep.fr/"), code
        for lycee, offer in REFERENCE.offering(code):
            assert offer.label == sheet.label and lycee.offers(code)


def test_sentences_stay_short_for_a_fifteen_year_old() -> None:
    for sheet in REFERENCE.formations:
        for text in (sheet.description, *sheet.after):
            sentences = [s for s in text.replace("…", ".").split(". ") if s]
            assert max(len(s.split()) for s in sentences) <= 35, (sheet.code, text)


def test_the_file_says_where_each_kind_of_data_comes_from() -> None:
    covered = {s.covers for s in REFERENCE.sources}
    assert {"coordonnées des lycées", "accès en transports", "description des formations", "liens ONISEP"} <= covered
    assert all(s.checked for s in REFERENCE.sources)


@pytest.mark.parametrize("lycee", LYCEES, ids=lambda e: e.uai)
def test_the_journey_link_names_the_lycee_as_destination_and_nothing_else(lycee) -> None:
    url = journey_url(lycee)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == JOURNEY_PLANNER
    query = parse_qs(parts.query)
    assert list(query) == ["to"]  # no origin: the student's home is never asked for nor sent
    lat, lon = (float(x) for x in query["to"][0].split(","))
    assert (lat, lon) == pytest.approx((lycee.coordinates.lat, lycee.coordinates.lon), abs=1e-5)


def test_no_journey_link_without_coordinates() -> None:
    lycee = LYCEES[0].model_copy(update={"coordinates": None})
    assert journey_url(lycee) is None


def test_a_stop_reads_in_french() -> None:
    assert lines_text(("8",)) == "ligne 8"
    assert lines_text(("A", "D")) == "lignes A et D"
    stops = {stop_label(s) for e in LYCEES for s in e.access}
    assert "Métro Bastille (lignes 1, 5 et 8)" in stops


def _raw() -> dict:
    return json.loads(default_reference_text())


def test_a_formation_offered_but_missing_from_the_catalogue_is_refused() -> None:
    raw = _raw()
    raw["formations"] = raw["formations"][1:]
    with pytest.raises(ValidationError, match="missing from the catalogue"):
        parse_reference(json.dumps(raw))


def test_a_catalogue_label_differing_from_the_offer_is_refused() -> None:
    raw = _raw()
    raw["formations"][0]["label"] = "Autre chose"
    with pytest.raises(ValidationError, match="label it differently"):
        parse_reference(json.dumps(raw))


def test_a_formation_described_twice_is_refused() -> None:
    raw = _raw()
    raw["formations"].append(raw["formations"][0])
    with pytest.raises(ValidationError, match="twice"):
        parse_reference(json.dumps(raw))


@pytest.mark.parametrize("url", ["http://www.onisep.fr/x", "https://example.org/onisep", "https://www.onisep.fr/a b"])
def test_an_onisep_link_elsewhere_than_onisep_is_refused(url: str) -> None:
    raw = _raw()
    raw["formations"][0]["onisep_url"] = url
    with pytest.raises(ValidationError):
        parse_reference(json.dumps(raw))


@pytest.mark.parametrize("coordinates", [{"lat": 91, "lon": 2.3}, {"lat": 48.8, "lon": 181}])
def test_coordinates_off_the_globe_are_refused(coordinates: dict) -> None:
    raw = _raw()
    lycee = next(e for e in raw["establishments"] if e["type"] == "lycee")
    lycee["coordinates"] = coordinates
    with pytest.raises(ValidationError):
        parse_reference(json.dumps(raw))


def test_a_stop_without_lines_is_refused() -> None:
    raw = _raw()
    lycee = next(e for e in raw["establishments"] if e["type"] == "lycee")
    lycee["access"][0]["lines"] = []
    with pytest.raises(ValidationError):
        parse_reference(json.dumps(raw))


def test_a_file_from_before_the_catalogue_still_loads() -> None:
    """A reference file imported before version 2027.2 (no catalogue, no coordinates) keeps the services up."""
    raw = _raw()
    del raw["formations"], raw["sources"]
    for e in raw["establishments"]:
        e.pop("coordinates", None)
        e.pop("access", None)
    old = parse_reference(json.dumps(raw))
    assert old.formations == () and old.formation(next(iter(OFFERED))) is None
