"""The services in process, signing in through the académie's provider: the services' world of tests/services
(`Passpro`: real Redis, SQLite files, snapshots) with the OIDC settings, and a browser that goes through
the provider's login form (`sign_in`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx
from fastapi.testclient import TestClient

from academie_provider import TEST_BASE, AcademieProvider

from tests.in_services_world import load

load()  # tests/services' conftest as the module services_world, as the other folders share it
from services_world import CAMPAIGN, Passpro, _service  # noqa: E402

SESSION_COOKIES = {"registration": "passpro_registration", "evaluation": "passpro_evaluation", "scoring": "passpro_scoring"}


@dataclass
class ProviderPasspro(Passpro):
    """Passpro whose services sign staff in through `provider` (and accept its access tokens)."""

    provider: AcademieProvider | None = None
    changes: dict[str, object] = field(default_factory=dict)  # more settings (environment, demo, ...)
    _access_tokens: dict[tuple[str, str | None], str] = field(default_factory=dict)

    def settings(self, service: str):
        settings = super().settings(service)
        return settings.model_copy(update={**(self.provider.settings() if self.provider else {}), **self.changes})

    @contextlib.contextmanager
    def client(self, service: str, *, migrate: bool = True) -> Iterator[TestClient]:
        _, _, create_app = _service(service)
        if migrate:
            self.migrate(service)
        app = create_app(self.settings(service))
        with TestClient(app, base_url=TEST_BASE, raise_server_exceptions=False) as client:
            yield client

    def auth(self, role: str, uai: str | None, user: str | None = None) -> dict[str, str]:
        """The provider's own access token for the caller (the rights matrix run with provider tokens)."""
        from academie_provider import matrix_sub

        assert user is None or user == matrix_sub(role, uai)
        if (role, uai) not in self._access_tokens:
            self._access_tokens[(role, uai)] = self.provider.access_token(matrix_sub(role, uai))
        return {"Authorization": f"Bearer {self._access_tokens[(role, uai)]}"}


def start_sign_in(client: TestClient, next_path: str | None = None) -> httpx.Response:
    """GET /auth/login on the service: the redirect to the provider (and the flow cookie)."""
    params = {"next": next_path} if next_path is not None else None
    return client.get("/auth/login", params=params, follow_redirects=False)


def provider_callback(provider: AcademieProvider, login: httpx.Response, sub: str) -> str:
    """At the provider, as a browser: its login form filled as `sub`; the service's callback URL it sends back to
    (path and query)."""
    assert login.status_code == 302, login.text
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        back = provider.walk(login.headers["location"], sub, browser, f"{TEST_BASE}/auth/callback")
    parsed = urlparse(back)
    return f"{parsed.path}?{parsed.query}"


def sign_in(client: TestClient, provider: AcademieProvider, sub: str, next_path: str | None = None) -> httpx.Response:
    """The whole sign-in of `sub`: the service's answer to the provider's callback (not followed)."""
    callback = provider_callback(provider, start_sign_in(client, next_path), sub)
    return client.get(callback, follow_redirects=False)


__all__ = ["CAMPAIGN", "SESSION_COOKIES", "ProviderPasspro", "provider_callback", "sign_in", "start_sign_in"]
