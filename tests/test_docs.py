"""The project's documents say what the code does: the committed OpenAPI and AsyncAPI documents are in step
with the code (CI runs this); README.md and docs/ stand alone in a clone; every page links the accessibility
statement."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from services.cli.docs import API_DIR, documents, stale_documents

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pages"))
from pages_world import (  # noqa: E402
    COLLEGE,
    FORMATION,
    LYCEE,
    World,
    api_post,
    college_avis,
    register_student,
    schedule,
    text_of,
    world,  # noqa: F401 - the fixture
)


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


# --- README.md and docs/ stand alone in a clone, and say what the code does (issue 11) --------------

DOCUMENTS_MD = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)>\s]+)>?(?:\s+\"[^\"]*\")?\s*\)")
AUTOLINK = re.compile(r"<((?:[a-z][a-z0-9+.-]*:|www\.)[^>\s]+)>", re.I)
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)
HTML_LINK = re.compile(r"(?:href|src)=[\"']([^\"']+)[\"']")


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code (where a URL is an example, not a link)."""
    return re.sub(r"`[^`]*`", "", FENCE.sub("", text))


def _links(text: str) -> list[str]:
    prose = _prose(text)
    return [m.group(1) for pattern in (INLINE_LINK, AUTOLINK, REFERENCE, HTML_LINK) for m in pattern.finditer(prose)]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def test_the_readme_starts_with_the_two_commands():
    first_block = FENCE.search((ROOT / "README.md").read_text(encoding="utf-8")).group(0).splitlines()
    commands = [line.split("#")[0].strip() for line in first_block[1:-1]]
    assert commands == ["pip install -c requirements-lock.txt -e . && passpro up --demo", "bash tests/run"]


def test_no_link_in_the_readme_or_docs_leaves_the_repository_and_every_one_resolves():
    checked = 0
    for document in DOCUMENTS_MD:
        for link in _links(document.read_text(encoding="utf-8")):
            where = f"{document.relative_to(ROOT)}: {link}"
            assert not re.match(r"^([a-z][a-z0-9+.-]*:|//|www\.)", link, re.I), f"{where} points outside the repository"
            target, _, anchor = link.partition("#")
            path = (document.parent / target).resolve() if target else document
            assert path.is_relative_to(ROOT), f"{where} leaves the repository (dead in a clone)"
            assert path.exists(), f"{where} does not exist"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{where}: no such heading"
            checked += 1
    assert checked > 40  # the documents do link to each other


def test_the_docs_are_found_from_the_readme_and_the_index():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "README.md":
            assert f"docs/{page.name}" in readme or page.name in index, page.name
            assert f"({page.name})" in index, f"docs/README.md does not link {page.name}"


def _code_variables() -> set[str]:
    """Every PASSPRO_* name the code, the deployment and the test fixtures read or set."""
    names: set[str] = set()
    sources = [*ROOT.glob("shared/**/*.py"), *ROOT.glob("services/**/*.py"), *ROOT.glob("bench/*.py"),
               *ROOT.glob("tests/**/*.py"), *ROOT.glob("deploy/*")]
    for source in sources:
        if source.is_file() and source != Path(__file__).resolve():
            text = source.read_text(encoding="utf-8", errors="replace")
            names |= set(re.findall(r"PASSPRO_[A-Z0-9_]*[A-Z0-9]", text))
    return names


def _settings_variables() -> dict[str, list[str]]:
    """Each service setting -> the variables that set it (the alias choices, else PASSPRO_<NAME>)."""
    from services.evaluation.settings import EvaluationSettings
    from services.notifier.settings import NotifierSettings
    from services.registration.settings import RegistrationSettings
    from services.scoring.settings import ScoringSettings

    found: dict[str, list[str]] = {}
    for settings_class in (RegistrationSettings, EvaluationSettings, ScoringSettings, NotifierSettings):
        for name, field in settings_class.model_fields.items():
            alias = field.validation_alias
            choices = [f"PASSPRO_{name.upper()}"] if alias is None else [c for c in alias.choices if isinstance(c, str)]
            found.setdefault(f"{settings_class.__name__}.{name}", choices)
    return found


def test_every_variable_named_in_the_docs_exists_in_the_code():
    in_code = _code_variables() | {v for names in _settings_variables().values() for v in names}
    for document in DOCUMENTS_MD:
        named = set(re.findall(r"PASSPRO_[A-Z0-9_]*[A-Z0-9]", document.read_text(encoding="utf-8")))
        assert named <= in_code, (document.name, sorted(named - in_code))


def test_the_configuration_table_gives_every_setting_with_its_default():
    rows = {}
    for line in (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        for variable in re.findall(r"`(PASSPRO_[A-Z0-9_]+)`", cells[0] if cells else ""):
            rows[variable] = cells
    for setting, variables in _settings_variables().items():
        for variable in variables:
            assert variable in rows, f"{setting}: {variable} is not in docs/configuration.md"
            assert len(rows[variable]) >= 3 and rows[variable][1], f"{variable}: no default given"
    # Read outside the settings classes: by `passpro serve`, `passpro up` and the commands beside it.
    for variable in ("PASSPRO_HOST", "PASSPRO_DATA_DIR", "PASSPRO_DATABASE_URL"):
        assert variable in rows


def _passpro_commands(text: str) -> list[list[str]]:
    """The `passpro …` commands a document shows, in inline code or in code blocks, as words."""
    found = []
    spans = [m.group(1) for m in re.finditer(r"`([^`]+)`", FENCE.sub("", text))]
    blocks = [line for block in FENCE.findall(text) for line in block.splitlines()[1:-1]]
    for chunk in spans + blocks:
        # `passpro …`, and the image's entry point: `docker compose … run --rm scoring campaign open 2027`
        pattern = r"(?:(?:^|&&|\$\()\s*passpro|run --rm (?:registration|evaluation|scoring))((?:\s+[^\s#;)|`]+)*)"
        for m in re.finditer(pattern, " ".join(chunk.split())):
            words = m.group(1).split()
            if words:
                found.append(words)
    return found


def _leaf(parser, words: list[str]):
    """The subparser the words name and the words left after its name; None if a word names no command."""
    import argparse

    while True:
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not groups or not words:
            return parser, words
        name = words[0].strip("[]").split("|")[0].split("\\")[0]
        if name not in groups[0].choices:
            return None, words
        parser, words = groups[0].choices[name], words[1:]


def test_every_passpro_command_in_the_docs_exists_with_its_options():
    from services.cli import parser as cli_parser

    root = cli_parser()
    checked = 0
    for document in [*DOCUMENTS_MD, ROOT / "deploy" / "README.md"]:
        for words in _passpro_commands(document.read_text(encoding="utf-8")):
            if words[0].startswith(("<", "-")):
                continue  # `passpro <command> --help`, `passpro --help`: the command line in general
            leaf, rest = _leaf(root, words)
            assert leaf is not None, f"{document.name}: passpro {' '.join(words)}: no such command"
            for word in rest:
                option = word.strip("[]").split("=")[0]
                if option.startswith("-") and option not in ("-", "--"):
                    where = f"{document.name}: passpro {' '.join(words)}"
                    assert option in leaf._option_string_actions, f"{where}: no option {option}"
            checked += 1
    assert checked > 40


def test_the_command_line_page_documents_every_command_and_option():
    import argparse

    from services.cli import parser as cli_parser

    page = (ROOT / "docs" / "command-line.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `passpro ")]

    def leaves(parser, path):
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not groups:
            yield path, parser
        for group in groups:
            for name, child in group.choices.items():
                yield from leaves(child, [*path, name])

    for path, leaf in leaves(cli_parser(), []):
        command = "passpro " + " ".join(path)
        row = next((r for r in rows if re.match(rf"\| `{re.escape(command)}( |`)", r)), None)
        assert row is not None, f"{command} is not in docs/command-line.md"
        for action in leaf._actions:
            if action.help == argparse.SUPPRESS or not action.option_strings:
                continue
            if set(action.option_strings) & {"-h", "--data-dir", "--verbose"}:
                continue  # every command's (said once above the table)
            assert any(o in row for o in action.option_strings), f"{command}: {action.option_strings[-1]} undocumented"


# --- the accessibility statement, linked from every page's footer (issue 11) ------------------------

STATEMENT = "/accessibilite"
# Standalone printable documents, not pages of a space: the family's copy is also written to a file by
# `passpro student-file`, where a link to /accessibilite would lead nowhere.
DOCUMENTS = ("dossier.html",)


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
    base = (ROOT / "shared/web/templates/base.html").read_text(encoding="utf-8")
    footer = re.search(r'<footer class="site-footer">(.*?)</footer>', base, re.S).group(1)
    assert f'href="{STATEMENT}"' in footer
    templates = sorted((ROOT / "services").glob("*/templates/*.html")) + sorted(
        (ROOT / "shared/web/templates").glob("*.html")
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
        avis = {**voeu, "avis": "favorable"}
        answer = api_post(evaluation, world.token("proviseur", LYCEE), f"/api/students/{ine}/lycee-avis", avis)
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
