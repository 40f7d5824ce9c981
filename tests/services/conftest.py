"""In-process services for the HTTP tests: one app per test on real Redis and SQLite files, never mocks.

`passpro` gives a fresh académie (keys deleted after the test) with campaign 2027 open,
tokens, settings, and a snapshot of every key of the académie, so a test can show
that a refused request stored nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from shared.contracts.reference import ReferenceData, default_reference_text, parse_reference
from shared.contracts.streams import StreamKeys
from shared.runtime.http.auth import issue_token
from shared.runtime.migrations import upgrade

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
SERVICES = ("registration", "evaluation", "scoring")


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


@dataclass
class Passpro:
    redis_url: str
    academie: str
    data_dir: Path
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    reference: ReferenceData = field(default_factory=lambda: parse_reference(default_reference_text()))
    redis: redis_sync.Redis | None = None
    # Every service of one Passpro shares the key store and the master key (as in production).
    master_key: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    keystore_url: str = ""  # default: keys.sqlite3 under data_dir

    def keystore_database_url(self) -> str:
        return self.keystore_url or f"sqlite:///{self.data_dir / 'keys.sqlite3'}"

    @property
    def keys(self) -> StreamKeys:
        return StreamKeys(self.academie)

    def database_url(self, service: str) -> str:
        return f"sqlite:///{self.data_dir / f'{service}.sqlite3'}"

    def settings(self, service: str):
        settings_class, _, _ = _service(service)
        url = self.database_url(service)
        # Passed under its environment name: see test_settings_take_the_database_url_by_field_name.
        settings = settings_class(
            redis_url=self.redis_url,
            academie=self.academie,
            jwt_secret=self.secret,
            campaign=CAMPAIGN,
            data_dir=self.data_dir,
            read_wait_seconds=10.0,
            master_key=self.master_key,
            keystore_database_url=self.keystore_database_url(),
            **{f"PASSPRO_{service.upper()}_DATABASE_URL": url},
        )
        assert settings.resolved_database_url() == url
        return settings

    def migrate(self, service: str) -> None:
        _, migrations, _ = _service(service)
        upgrade(migrations, self.database_url(service), None)

    @contextlib.contextmanager
    def client(self, service: str, *, migrate: bool = True) -> Iterator[TestClient]:
        _, _, create_app = _service(service)
        if migrate:
            self.migrate(service)
        with TestClient(create_app(self.settings(service)), raise_server_exceptions=False) as client:
            yield client

    def open_campaign(self, campaign: str = CAMPAIGN, bonus: int = 2500, closes_at=None):
        from services.cli import open_campaign

        return asyncio.run(open_campaign(self.settings("scoring"), campaign, bonus, closes_at))

    # --- tokens ---------------------------------------------------------------------------------

    def token(self, role: str, uai: str | None, user: str | None = None, **kwargs) -> str:
        return issue_token(
            self.secret, user_id=user or f"{role}-{uai or 'rectorat'}", role=role, uai=uai,
            reference=self.reference, **kwargs,
        )

    def forged(self, claims: dict, secret: str | None = None) -> str:
        """A token with any claims (for those `issue_token` rightly refuses to make)."""
        now = int(time.time())
        base = {"sub": "someone", "iat": now, "exp": now + 600, "iss": "passpro"}
        return jwt.encode({**base, **claims}, secret or self.secret, algorithm="HS256")

    def auth(self, role: str, uai: str | None, user: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, uai, user)}"}

    # --- what the log holds ------------------------------------------------------------------

    def xlen(self, key: str) -> int:
        return self.redis.xlen(key)

    def service_stream(self, service: str = "registration") -> str:
        return self.keys.service(CAMPAIGN, service)

    def student_stream(self, ine: str) -> str:
        return self.keys.student(CAMPAIGN, ine)

    def snapshot(self) -> dict[str, object]:
        """Every key of the académie with its size: equal snapshots mean nothing was stored."""
        sizes: dict[str, object] = {}
        for raw in self.redis.scan_iter(match=f"passpro:{{{self.academie}}}*", count=1000):
            key = raw.decode()
            kind = self.redis.type(raw).decode()
            if kind == "stream":
                sizes[key] = ("stream", self.redis.xlen(raw), self.redis.xinfo_stream(raw)["last-generated-id"])
            elif kind == "hash":
                sizes[key] = ("hash", self.redis.hlen(raw))
            else:
                sizes[key] = (kind, self.redis.dump(raw))
        return sizes


@pytest.fixture
def passpro(redis_url: str, academie: str, tmp_path: Path) -> Iterator[Passpro]:
    """A fresh académie with campaign 2027 open."""
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        world = Passpro(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        world.open_campaign()
        yield world


@pytest.fixture
def passpro_cli(passpro: Passpro, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):  # noqa: ANN201
    """`passpro …` run in process against the test's académie (its log, data folder, campaign 2027):
    `passpro_cli("campaign", "open", "2028")` -> (exit code, stdout, stderr)."""
    from services.cli import main

    for name, value in {
        "PASSPRO_REDIS_URL": passpro.redis_url, "PASSPRO_ACADEMIE": passpro.academie,
        "PASSPRO_DATA_DIR": str(passpro.data_dir), "PASSPRO_CAMPAIGN": CAMPAIGN,
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def registration(passpro: Passpro) -> Iterator[TestClient]:
    with passpro.client("registration") as client:
        yield client


@pytest.fixture
def evaluation(passpro: Passpro) -> Iterator[TestClient]:
    with passpro.client("evaluation") as client:
        yield client


@pytest.fixture
def scoring(passpro: Passpro) -> Iterator[TestClient]:
    with passpro.client("scoring") as client:
        yield client
