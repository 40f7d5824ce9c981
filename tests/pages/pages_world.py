"""The services in process for the page tests: real Redis and SQLite files, demo mode, and a browser-like client.

A `Visitor` is a TestClient that keeps its cookies and reads each page's CSRF
token, as a browser would: it signs in through the sign-in page and posts forms.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from shared.contracts.reference import ReferenceData, default_reference_text, parse_reference
from shared.runtime.http.auth import issue_token
from shared.runtime.migrations import upgrade

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
COLLEGE = "0752536Z"  # Collège Voltaire
OTHER_COLLEGE = "0751790N"  # Collège Pierre Alviset
LYCEE = "0752845K"  # LP Théophile Gautier
FORMATION = "2473121131"  # 2nde pro Métiers de la relation client
OTHER_LYCEE = "0750784V"  # LP des métiers de l'ameublement

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
_EVENT_ID = re.compile(r'name="event_id" value="([0-9a-f-]+)"')


def _service(name: str):
    if name == "registration":
        from services.registration.app import MIGRATIONS, create_app
        from services.registration.settings import RegistrationSettings as Settings
    elif name == "evaluation":
        from services.evaluation.app import MIGRATIONS, create_app
        from services.evaluation.settings import EvaluationSettings as Settings
    else:
        from services.cli.common import scoring_app as create_app  # with the records composed in, as it runs
        from services.scoring.app import MIGRATIONS
        from services.scoring.settings import ScoringSettings as Settings
    return Settings, MIGRATIONS, create_app


def text_of(page: str) -> str:
    """A page's visible text, tags dropped and entities decoded, spaces collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S))
    return " ".join(html.unescape(without_tags).split())


class Visitor:
    """One browser: its cookies, and the CSRF token of the last page it read."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs):
        answer = self.client.get(path, **kwargs)
        if found := _CSRF.search(answer.text):
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, form: dict[str, str], *, csrf: bool = True, follow: bool = True):
        data = {**form, "csrf": self.csrf} if csrf else dict(form)
        answer = self.client.post(path, data=data, follow_redirects=follow)
        if found := _CSRF.search(answer.text):
            self.csrf = found.group(1)
        return answer

    def sign_in(self, token: str):
        self.get("/connexion")
        return self.post("/connexion", {"jeton": token})


@dataclass
class World:
    redis_url: str
    academie: str
    data_dir: Path
    redis: redis_sync.Redis
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    reference: ReferenceData = field(default_factory=lambda: parse_reference(default_reference_text()))

    def settings(self, service: str, demo: bool = True):
        settings_class, _, _ = _service(service)
        return settings_class(
            redis_url=self.redis_url, academie=self.academie, jwt_secret=self.secret, campaign=CAMPAIGN,
            data_dir=self.data_dir, read_wait_seconds=10.0, demo=demo,
            **{f"PASSPRO_{service.upper()}_DATABASE_URL": f"sqlite:///{self.data_dir / f'{service}.sqlite3'}"},
        )

    @contextlib.contextmanager
    def client(self, service: str, demo: bool = True) -> Iterator[TestClient]:
        _, migrations, create_app = _service(service)
        upgrade(migrations, f"sqlite:///{self.data_dir / f'{service}.sqlite3'}", None)
        with TestClient(create_app(self.settings(service, demo)), raise_server_exceptions=False) as client:
            yield client

    @contextlib.contextmanager
    def visitor(self, service: str, role: str | None = None, uai: str | None = None, demo: bool = True) -> Iterator[Visitor]:
        """A browser on one service, signed in as `role` of `uai` when a role is given."""
        with self.client(service, demo) as client:
            visitor = Visitor(client)
            if role:
                answer = visitor.sign_in(self.token(role, uai))
                assert answer.status_code == 200, answer.text
            yield visitor

    def token(self, role: str, uai: str | None, user: str | None = None, **kwargs) -> str:
        return issue_token(
            self.secret, user_id=user or f"{role}.{uai or 'rectorat'}", role=role, uai=uai, reference=self.reference,
            **kwargs,
        )

    def open_campaign(self) -> None:
        from services.cli import open_campaign

        asyncio.run(open_campaign(self.settings("scoring"), CAMPAIGN, 2500, None))

    def snapshot(self) -> dict[str, object]:
        """Every key of the académie with its length: equal snapshots mean nothing was stored. The access logs
        are left out: a refused form shows the student's page again, a read that is logged (issue 5)."""
        found: dict[str, object] = {}
        for raw in self.redis.scan_iter(match=f"passpro:{{{self.academie}}}*", count=1000):
            if b":access:" in raw:
                continue
            kind = self.redis.type(raw).decode()
            found[raw.decode()] = self.redis.xlen(raw) if kind == "stream" else kind
        return found


# --- the scheme's steps through the JSON API, to set a scene fast -------------------------------


def api_post(client: TestClient, token: str, path: str, body: dict) -> dict:
    answer = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (200, 201), f"POST {path} -> {answer.status_code} {answer.text}"
    return answer.json()


def register_student(world: World, registration: TestClient, ine: str, college: str = COLLEGE, **changes) -> dict:
    body = {
        "student_ine": ine, "college_uai": college, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "claire.dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    } | changes
    return api_post(registration, world.token("principal", college), "/api/students", body)


def schedule(world: World, registration: TestClient, ine: str, when: str, college: str = COLLEGE) -> dict:
    body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": when, "mode": "presentiel"}
    return api_post(registration, world.token("referent", college), f"/api/students/{ine}/interviews", body)


def college_avis(world: World, registration: TestClient, ine: str, college: str = COLLEGE) -> dict:
    body = {"college_uai": college, "avis": "favorable", "comment": "Élève très impliquée dans son projet."}
    return api_post(registration, world.token("principal", college), f"/api/students/{ine}/college-avis", body)


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path) -> Iterator[World]:
    """The services in process on a fresh académie with campaign 2027 open (the page tests' and the docs')."""
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = World(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w
