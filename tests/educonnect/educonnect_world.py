"""The EduConnect tests' world: the page tests' World (real Redis, SQLite files, registration in process) with
registration's EduConnect settings pointing at the test IdP, and the steps of a sign-in through it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select

from pages_world import CAMPAIGN, COLLEGE, Visitor, World, register_student
from saml_idp import Pending, TestIdP, form_fields
from services.registration.access_codes import new_code, store_code
from services.registration.views import educonnect_links
from shared.runtime.http.auth import Principal, read_token

SP_BASE_URL = "http://testserver"  # the TestClient's address: the ACS the IdP answers is on it


@dataclass
class EduConnectWorld(World):
    idp: TestIdP | None = None
    sp_keys: tuple[Path, Path] | None = None
    attribute_map: Path | None = None
    sp_base_url: str = SP_BASE_URL
    idp_off: bool = False  # registration without EduConnect
    idp_metadata: str | None = None  # default: the IdP's metadata URL
    codes: dict[str, str] = field(default_factory=dict)

    def settings(self, service: str, demo: bool = True):
        settings = super().settings(service, demo)
        if service != "registration" or self.idp_off:
            return settings
        return settings.model_copy(update={
            "saml_idp_metadata": self.idp_metadata or f"{self.idp.base_url}/metadata",
            "saml_sp_base_url": self.sp_base_url,
            "saml_sp_key": self.sp_keys[0], "saml_sp_cert": self.sp_keys[1], "saml_attribute_map": self.attribute_map,
        })

    @contextlib.contextmanager
    def registration(self) -> Iterator[Visitor]:
        """A browser on registration, whose SP metadata the IdP has taken (as EduConnect's registration does)."""
        with self.client("registration", demo=False) as client:
            metadata = client.get("/saml/metadata")
            assert metadata.status_code == 200, metadata.text
            self.idp.trust(f"{self.sp_base_url}/saml/metadata", metadata.text)
            yield Visitor(client)

    # --- the scene -----------------------------------------------------------------------------------------

    def register(self, visitor: Visitor, ine: str) -> None:
        register_student(self, visitor.client, ine)

    def issue_code(self, ine: str, college: str = COLLEGE, days: int = 30) -> str:
        """An access code for the student, kept as H2's access codes keep it (a salted hash in registration's db)."""
        code = new_code()
        now = datetime.now(UTC)
        with self._engine() as engine:
            store_code(engine, campaign=CAMPAIGN, ine=ine, college_uai=college, code=code, issued_by="principal.test",
                       issued_at=now, expires_at=now + timedelta(days=days))
        self.codes[ine] = code
        return code

    # --- a sign-in through the IdP --------------------------------------------------------------------------

    def start(self, visitor: Visitor) -> Pending:
        """« Se connecter avec ÉduConnect »: the AuthnRequest the IdP receives (its signature checked by it)."""
        answer = visitor.client.get("/saml/login", follow_redirects=False)
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert location.startswith(self.idp.base_url + "/sso/redirect?"), location
        _, pending = self.idp.receive_url(location)
        return pending

    def through_idp(self, visitor: Visitor, login: str) -> dict[str, str]:
        """The whole way over HTTP: Passpro's redirect, the IdP's sign-in form, its auto-posted answer's fields."""
        answer = visitor.client.get("/saml/login", follow_redirects=False)
        assert answer.status_code == 303, answer.text
        with httpx.Client(timeout=10) as browser:
            form_page = browser.get(answer.headers["location"])
            assert form_page.status_code == 200, form_page.text
            key = form_fields(form_page.text.replace('"', "'"))["key"]
            posted = browser.post(f"{self.idp.base_url}/sso/login", data={"key": key, "login": login})
            assert posted.status_code == 200, posted.text
        fields = form_fields(posted.text)
        assert set(fields) == {"SAMLResponse", "RelayState"}, fields
        return fields

    def post_acs(self, visitor: Visitor, saml_response: str, relay_state: str):
        return visitor.client.post(
            "/saml/acs", data={"SAMLResponse": saml_response, "RelayState": relay_state}, follow_redirects=False,
        )

    # --- what was stored ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _engine(self):
        engine = create_engine(f"sqlite:///{self.data_dir / 'registration.sqlite3'}")
        try:
            yield engine
        finally:
            engine.dispose()

    def links(self) -> list[tuple[str, str, str]]:
        with self._engine() as engine, engine.connect() as conn:
            rows = conn.execute(select(educonnect_links.c.campaign, educonnect_links.c.subject, educonnect_links.c.ine))
            return [tuple(row) for row in rows]

    def pending_identities(self) -> list[bytes]:
        return list(self.redis.scan_iter(match=f"passpro:{{{self.academie}}}:educonnect:pending:*"))

    def session_of(self, visitor: Visitor) -> Principal | None:
        token = visitor.client.cookies.get("passpro_registration")
        return read_token(token, self.secret, self.reference) if token else None


def forget_student(world: EduConnectWorld, visitor: Visitor, ine: str) -> None:
    """`passpro forget`'s erasure (records.erasure.forget, as the rectorat), then registration's view caught up
    with it (a read at the erasure's position)."""
    import asyncio

    from redis.asyncio import Redis

    from services.records.erasure import forget
    from shared.contracts.events import Actor
    from shared.contracts.streams import StreamKeys
    from shared.runtime.log.client import EventLog

    async def run() -> str:
        settings = world.settings("scoring")
        keystore = settings.open_keystore()
        redis = Redis.from_url(world.redis_url, decode_responses=True)
        try:
            done = await forget(
                EventLog(redis, StreamKeys(world.academie), keystore), keystore, None, ine,
                "Demande de la famille (RGPD)", Actor(user_id="rectorat.test", role="rectorat", uai=None),
            )
            return done.erasures[0].position
        finally:
            await redis.aclose()
            keystore.close()

    position = asyncio.run(run())
    principal = {"Authorization": f"Bearer {world.token('principal', COLLEGE)}"}
    read = visitor.client.get(f"/api/students?min_position={position}", headers=principal)
    assert read.status_code == 200, read.text
