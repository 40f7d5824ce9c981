"""GET /api/formations and the pages /formations, /formations/{code} over HTTP (SPEC §6): any signed-in user
reads them, the student included; nobody else; each formation with what the job is, what comes after, its
ONISEP page and the lycées offering it, with a journey link that names the lycée as destination only."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.contracts.reference import JOURNEY_PLANNER

COLLEGE = "0752536Z"  # Collège Voltaire
LYCEE = "0752845K"  # LP Théophile Gautier
FORMATION = "2473121131"  # 2nde professionnelle Métiers de la relation client, offered by three lycées
CAP = "50033402211"  # CAP Cuisine, offered by LP Belliard
INE = "123456789AB"
SESSION = "passpro_registration"

CALLERS = [
    ("principal", COLLEGE, None),
    ("referent", COLLEGE, None),
    ("lycee_staff", LYCEE, None),
    ("proviseur", LYCEE, None),
    ("rectorat", None, None),
    ("eleve", COLLEGE, INE),
]


def token(passpro, role: str, uai: str | None, ine: str | None) -> str:
    return passpro.token(role, uai, ine=ine) if ine else passpro.token(role, uai)


def text_of(page: str) -> str:
    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S))
    return " ".join(html.unescape(without_tags).split())


def links(page: str) -> dict[str, str]:
    """Each link's text -> its address."""
    found = re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', page, flags=re.S)
    return {text_of(text): html.unescape(href) for href, text in found}


# --- the API ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "uai", "ine"), CALLERS, ids=[c[0] for c in CALLERS])
def test_every_signed_in_user_reads_the_formations(passpro, registration, role, uai, ine):
    before = passpro.snapshot()
    answer = registration.get("/api/formations", headers={"Authorization": f"Bearer {token(passpro, role, uai, ine)}"})
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["version"] == passpro.reference.version
    assert page["total"] == len(page["items"]) == len(passpro.reference.formations)
    assert passpro.snapshot() == before  # a read stores nothing


@pytest.mark.parametrize("authorization", [None, "Bearer pas-un-jeton", "Basic dXNlcjpwYXNz"])
def test_without_a_valid_token_the_formations_answer_401(passpro, registration, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = registration.get("/api/formations", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["error"] == "unauthenticated"


def test_an_expired_token_answers_401(passpro, registration):
    expired = passpro.forged({"role": "referent", "uai": COLLEGE, "exp": 1})
    assert registration.get("/api/formations", headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_a_formation_has_its_sheet_and_every_lycee_offering_it(passpro, registration):
    page = registration.get("/api/formations", headers=passpro.auth("referent", COLLEGE)).json()
    by_code = {f["code"]: f for f in page["items"]}
    relation = by_code[FORMATION]
    assert relation["label"] == "2nde professionnelle Métiers de la relation client"
    assert "clients" in relation["description"] and relation["after"]
    assert relation["onisep_url"].startswith("https://www.onisep.fr/")
    offering = {(e.uai, f.places) for e in passpro.reference.establishments for f in e.formations if f.code == FORMATION}
    assert {(lycee["uai"], lycee["places"]) for lycee in relation["lycees"]} == offering
    assert len(offering) == 3
    gautier = next(lycee for lycee in relation["lycees"] if lycee["uai"] == LYCEE)
    assert gautier["name"] == "Lycée professionnel Théophile Gautier"
    assert gautier["address"] == "49 rue de Charenton, 75012 Paris"
    assert {"mode": "metro", "stop": "Ledru-Rollin", "lines": ["8"]} in gautier["access"]
    assert set(gautier["coordinates"]) == {"lat", "lon"}
    journey = urlsplit(gautier["journey_url"])
    assert f"{journey.scheme}://{journey.netloc}{journey.path}" == JOURNEY_PLANNER
    assert list(parse_qs(journey.query)) == ["to"]


def test_the_establishments_carry_where_each_lycee_is_and_its_stops(passpro, registration):
    page = registration.get("/api/establishments", headers=passpro.auth("referent", COLLEGE)).json()
    gautier = next(e for e in page["items"] if e["uai"] == LYCEE)
    assert gautier["access"][0] == {"mode": "metro", "stop": "Ledru-Rollin", "lines": ["8"]}
    assert 48.8 < gautier["coordinates"]["lat"] < 48.9 and 2.2 < gautier["coordinates"]["lon"] < 2.5


def test_formations_are_sorted_by_label_and_each_lycee_by_name(passpro, registration):
    items = registration.get("/api/formations", headers=passpro.auth("rectorat", None)).json()["items"]
    assert [f["label"] for f in items] == sorted(f["label"] for f in items)
    for f in items:
        assert [lycee["name"] for lycee in f["lycees"]] == sorted(lycee["name"] for lycee in f["lycees"])


def test_the_formations_are_read_from_the_reference_data_in_force(passpro):
    """An imported reference file replaces the shipped one: the API answers its version and its catalogue."""
    import asyncio

    from redis.asyncio import Redis

    from shared.runtime.reference_store import import_reference

    raw = passpro.reference.model_dump(mode="json")
    raw["version"] = "2027.2-test"
    raw["formations"] = [
        {**sheet, "description": "Tu testes la description importée. Elle vient du fichier importé."}
        for sheet in raw["formations"]
    ]
    import json

    async def store() -> None:
        client = Redis.from_url(passpro.redis_url)
        try:
            await import_reference(client, passpro.keys, json.dumps(raw))
        finally:
            await client.aclose()

    asyncio.run(store())
    with passpro.client("registration") as registration:
        page = registration.get("/api/formations", headers=passpro.auth("referent", COLLEGE)).json()
    assert page["version"] == "2027.2-test"
    assert {f["description"] for f in page["items"]} == {"Tu testes la description importée. Elle vient du fichier importé."}


# --- the pages -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "uai", "ine"), CALLERS[:2] + CALLERS[-1:], ids=["principal", "referent", "eleve"])
def test_the_list_page_shows_every_formation_in_french(passpro, registration, role, uai, ine):
    registration.cookies.set(SESSION, token(passpro, role, uai, ine))
    answer = registration.get("/formations")
    assert answer.status_code == 200
    assert '<html lang="fr">' in answer.text
    text = text_of(answer.text)
    assert "Découvrir les formations" in text
    assert "le bac professionnel" in text and "le CAP" in text
    found = links(answer.text)
    for sheet in passpro.reference.formations:
        assert found[sheet.label] == f"/formations/{sheet.code}"
    assert re.search(r"<h1>Découvrir les formations</h1>", answer.text)


def test_a_formation_page_shows_the_job_what_comes_after_and_the_lycees(passpro, registration):
    registration.cookies.set(SESSION, passpro.token("eleve", COLLEGE, ine=INE))
    answer = registration.get(f"/formations/{FORMATION}")
    assert answer.status_code == 200
    text = text_of(answer.text)
    sheet = passpro.reference.formation(FORMATION)
    assert f"<h1>{html.escape(sheet.label, quote=False)}</h1>" in answer.text
    assert "Le métier" in text and "Et après ?" in text and "Les 3 lycées qui la proposent" in text
    assert html.unescape(sheet.description) in text
    for item in sheet.after:
        assert item in text
    for lycee, offer in passpro.reference.offering(FORMATION):
        assert lycee.name in text and lycee.address in text and f"{offer.places} places" in text
    assert "Métro Ledru-Rollin (ligne 8)" in text and "Métro Bastille (lignes 1, 5 et 8)" in text
    assert "Passpro ne te demande jamais ton adresse" in text
    assert "Cette formation t'intéresse ? Parles-en à ton référent" in text  # the next step, for a student
    found = links(answer.text)
    assert found["Chercher « 2nde professionnelle Métiers de la relation client » sur le site de l'ONISEP"] == sheet.onisep_url


def test_the_journey_link_names_only_the_lycee(passpro, registration):
    registration.cookies.set(SESSION, passpro.token("referent", COLLEGE))
    answer = registration.get(f"/formations/{CAP}")
    assert answer.status_code == 200
    belliard = passpro.reference.lycee("0752608C")
    found = links(answer.text)
    journey = found["Itinéraire jusqu'au Lycée professionnel Belliard (carte OpenStreetMap)"]
    parts = urlsplit(journey)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == JOURNEY_PLANNER
    query = parse_qs(parts.query)
    assert list(query) == ["to"]  # a destination, and no origin
    lat, lon = (float(x) for x in query["to"][0].split(","))
    assert (lat, lon) == pytest.approx((belliard.coordinates.lat, belliard.coordinates.lon), abs=1e-5)
    assert "Trajet en métro, RER ou bus (Île-de-France Mobilités)" in found
    assert found["La fiche « CAP Cuisine » sur le site de l'ONISEP"].startswith(
        "https://www.onisep.fr/ressources/univers-formation/formations/lycees/"
    )
    assert "<form" not in answer.text.split("</header>", 1)[1]  # nothing to fill in: no address asked for
    assert "Cette formation t'intéresse" not in answer.text  # the student's next step is not the staff's


@pytest.mark.parametrize("code", ["9999999999", "abc", "2473121131x"])
def test_an_unknown_formation_is_a_404_page_in_french(passpro, registration, code):
    registration.cookies.set(SESSION, passpro.token("referent", COLLEGE))
    answer = registration.get(f"/formations/{code}")
    assert answer.status_code == 404
    assert "Cette formation n'existe pas dans Passpro." in text_of(answer.text)


@pytest.mark.parametrize("path", ["/formations", f"/formations/{FORMATION}"])
def test_the_pages_ask_a_visitor_to_sign_in(registration, path):
    answer = registration.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/connexion?suite={path}"


def test_the_staff_menu_links_the_formations(passpro, registration):
    registration.cookies.set(SESSION, passpro.token("principal", COLLEGE))
    page = registration.get("/formations").text
    nav = page.split('aria-label="Menu principal"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/formations" aria-current="page"' in nav and 'href="/"' in nav


def test_the_students_menu_leads_back_to_their_space(passpro, registration):
    registration.cookies.set(SESSION, passpro.token("eleve", COLLEGE, ine=INE))
    page = registration.get(f"/formations/{FORMATION}").text
    nav = page.split('aria-label="Menu principal"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/eleve"' in nav and "Mes élèves" not in nav


@pytest.mark.parametrize("path", ["/formations", f"/formations/{FORMATION}", f"/formations/{CAP}"])
def test_the_headings_outline_the_page_without_skipping_a_level(passpro, registration, path):
    registration.cookies.set(SESSION, passpro.token("eleve", COLLEGE, ine=INE))
    page = registration.get(path).text
    main = page.split('<main id="contenu"', 1)[1].split("</main>", 1)[0]
    levels = [int(level) for level in re.findall(r"<h([1-6])[ >]", main)]
    assert levels[0] == 1 and levels.count(1) == 1, levels
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels
    texts = [text_of(t) for t in re.findall(r"<a [^>]*>(.*?)</a>", main, flags=re.S)]
    assert all(len(t) >= 8 for t in texts), texts  # no « ici », « lien », « voir »: each link says where it goes
