"""The project's documents say what the code does: the committed OpenAPI and AsyncAPI documents are in step
with the code (CI runs this); README.md and docs/ stand alone in a clone; every page links the accessibility
statement."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import redis as redis_sync

from services.cli.docs import API_DIR, documents, stale_documents

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pages"))
from pages_world import COLLEGE, FORMATION, LYCEE, World, api_post, college_avis, register_student, schedule, text_of  # noqa: E402


def test_the_committed_api_documents_match_the_code():
    assert stale_documents() == [], "run `passpro docs` and commit shared/contracts/api/"


def test_every_service_documents_its_refusals_in_french():
    docs = documents()
    for name in ("registration", "evaluation", "scoring"):
        text = docs[f"openapi-{name}.json"]
        for status in ("401", "403", "404", "409", "413", "422"):
            assert f'"{status}"' in text, (name, status)
        assert "Jeton d'authentification absent" in text


def test_the_asyncapi_document_describes_every_stream_and_the_entry_format():
    text = documents()["asyncapi.json"]
    for key in ("passpro:{paris}:rectorat", "passpro:{paris}:{campaign}:registration",
                "passpro:{paris}:{campaign}:evaluation", "passpro:{paris}:{campaign}:student:{ine}"):
        assert key in text
    for field in ("event_id", "schema_version", "student_version", "prev_hash", "recorded_at"):
        assert f'"{field}"' in text
    assert (API_DIR / "asyncapi.json").exists()


# --- the accessibility statement, linked from every page's footer (issue 11) ------------------------

STATEMENT = "/accessibilite"
# Standalone printable documents, not pages of a space: the family's copy is also written to a file by
# `passpro student-file`, where a link to /accessibilite would lead nowhere.
DOCUMENTS = ("dossier.html",)


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path) -> Iterator[World]:
    """The services in process on a fresh académie with campaign 2027 open (as in tests/pages)."""
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = World(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w


class _Page(HTMLParser):
    """The links of a page, and the links inside its footer."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.footer_links: list[str] = []
        self._in_footer = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "footer":
            self._in_footer += 1
        elif tag == "a" and (href := dict(attrs).get("href")):
            self.links.append(href)
            if self._in_footer:
                self.footer_links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "footer":
            self._in_footer -= 1


def _parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_every_page_template_inherits_the_footer_that_links_the_statement():
    base = (ROOT / "shared/runtime/templates/base.html").read_text(encoding="utf-8")
    footer = re.search(r'<footer class="site-footer">(.*?)</footer>', base, re.S).group(1)
    assert f'href="{STATEMENT}"' in footer
    templates = sorted((ROOT / "services").glob("*/templates/*.html")) + sorted(
        (ROOT / "shared/runtime/templates").glob("*.html")
    )
    for path in templates:
        if path.name.startswith("_") or path.name in DOCUMENTS or path.name == "base.html":
            continue
        first = path.read_text(encoding="utf-8").lstrip().splitlines()[0]
        assert first in ('{% extends "layout.html" %}', '{% extends "base.html" %}'), path
    for layout in (ROOT / "services").glob("*/templates/layout.html"):
        assert layout.read_text(encoding="utf-8").lstrip().startswith('{% extends "base.html" %}'), layout


def _scene(world: World) -> str:
    """A student at every step up to the lycée avis; returns the position every view must reach."""
    ine = "123456789AB"
    with world.client("registration") as registration:
        register_student(world, registration, ine)
        college_avis(world, registration, ine)
        schedule(world, registration, ine, (datetime.now(UTC) - timedelta(hours=2)).isoformat())
    voeu = {"lycee_uai": LYCEE, "formation_code": FORMATION}
    with world.client("evaluation") as evaluation:
        held = {
            **voeu, "held_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(), "mode": "presentiel",
            "report": {"motivation": "satisfaisante", "chances_of_success": "satisfaisante", "advice": "Continuer."},
        }
        api_post(evaluation, world.token("lycee_staff", LYCEE), f"/api/students/{ine}/interviews/held", held)
        answer = api_post(
            evaluation, world.token("proviseur", LYCEE), f"/api/students/{ine}/lycee-avis", {**voeu, "avis": "favorable"}
        )
    return answer["positions"]["service"]


@pytest.mark.parametrize(
    "service, role, uai",
    [("registration", "principal", COLLEGE), ("evaluation", "proviseur", LYCEE), ("scoring", "rectorat", None)],
)
def test_every_page_reached_from_home_links_the_accessibility_statement_in_its_footer(
    world: World, service: str, role: str, uai: str | None
):
    position = _scene(world)
    with world.visitor(service) as anonymous:
        for path in ("/connexion", STATEMENT, "/nulle-part"):
            page = anonymous.get(path)
            assert STATEMENT in _parsed(page.text).footer_links, (service, path, page.status_code)
        statement = text_of(anonymous.get(STATEMENT).text)
        for words in ("Déclaration d'accessibilité", "RGAA", "non conforme", "Défenseur des droits"):
            assert words in statement
    with world.visitor(service, role, uai) as visitor:
        # Every page of the space a signed-in user can reach by following links from home.
        seen: set[str] = set()
        queue = [f"/?position={position}"]
        while queue and len(seen) < 40:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            page = visitor.get(path)
            assert page.status_code == 200, (service, path, page.status_code)
            if not page.headers["content-type"].startswith("text/html"):
                continue
            parsed = _parsed(page.text)
            if not path.endswith("/dossier"):  # the family's copy: a printable document (DOCUMENTS)
                assert STATEMENT in parsed.footer_links, (service, path)
            queue += [
                link for link in parsed.links
                if link.startswith("/") and not link.startswith(("/static/", "/api/", "//")) and link not in seen
            ]
        assert any(p.startswith("/eleves/123456789AB") for p in seen), seen  # the scene's pages, not only home
        assert STATEMENT in seen
