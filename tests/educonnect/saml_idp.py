"""A real SAML 2.0 identity provider for the tests: pysaml2's own IdP (saml2.server.Server) behind a small
Starlette app, with EduConnect's attributes (the same names as EduConnect's connectors read).

Over HTTP it serves its metadata (`/metadata`), takes an AuthnRequest by HTTP-Redirect (`/sso/redirect`),
shows a sign-in form (« Identifiant »), and answers the service provider's ACS by HTTP-POST with an assertion
it signs with its test key. The hostile tests also ask it (`response`) for what a real IdP never sends:
an unsigned assertion, one for another audience, an expired one, one signed by a key of nobody's metadata.
"""

from __future__ import annotations

import base64
import html
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlparse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.assertion import Policy
from saml2.attribute_converter import AttributeConverter
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NameID
from saml2.server import Server
from saml2.sigver import get_xmlsec_binary
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

# EduConnect's attributes: their SAML names (urn:oid) and the friendly names its documentation uses.
EDUCONNECT_ATTRIBUTES = {
    "FrEduCtId": "urn:oid:1.3.6.1.4.1.20326.10.999.1.57",
    "FrEduCtPersonAffiliation": "urn:oid:1.3.6.1.4.1.20326.10.999.1.7",
    "FrEduCtEleveUAI": "urn:oid:1.3.6.1.4.1.20326.10.999.1.72",
    "FrEduCtEleveINEHash": "urn:oid:1.3.6.1.4.1.20326.10.999.1.64",
    "FrEduCtDateNaissance": "urn:oid:1.3.6.1.4.1.20326.10.999.1.67",
    "FrEduCtEleveNiveau": "urn:oid:1.3.6.1.4.1.20326.10.999.1.73",
    "sn": "urn:oid:2.5.4.4",
    "givenName": "urn:oid:2.5.4.42",
}

PASSWORD_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


@dataclass(frozen=True)
class User:
    """Someone with an EduConnect account: the attributes EduConnect releases about them."""

    login: str
    educonnect_id: str
    affiliation: str  # eleve2d (a secondary-school student), resp2d (a parent)...
    uai: str
    birth_date: str
    ine_hash: str
    last_name: str = "Martin"
    first_name: str = "Léa"

    def identity(self) -> dict[str, list[str]]:
        return {
            "FrEduCtId": [self.educonnect_id],
            "FrEduCtPersonAffiliation": [self.affiliation],
            "FrEduCtEleveUAI": [self.uai],
            "FrEduCtEleveINEHash": [self.ine_hash],
            "FrEduCtDateNaissance": [self.birth_date],
            "FrEduCtEleveNiveau": ["3EME"],
            "sn": [self.last_name],
            "givenName": [self.first_name],
        }


@dataclass(frozen=True)
class Pending:
    """An AuthnRequest the IdP was sent: what it answers."""

    request_id: str
    sp_entity_id: str
    acs_url: str
    relay_state: str


def _converter() -> AttributeConverter:
    converter = AttributeConverter(NAME_FORMAT_URI)
    converter.from_dict(
        {
            "identifier": NAME_FORMAT_URI,
            "fro": {oid: name for name, oid in EDUCONNECT_ATTRIBUTES.items()},
            "to": dict(EDUCONNECT_ATTRIBUTES),
        }
    )
    return converter


def _release(minutes: float) -> Policy:
    return Policy({"default": {"lifetime": {"minutes": minutes}, "name_form": NAME_FORMAT_URI,
                               "attribute_restrictions": None, "entity_categories": []}})


@dataclass
class TestIdP:
    base_url: str
    key_file: Path
    cert_file: Path
    users: dict[str, User]
    sp_metadata: dict[str, str] = field(default_factory=dict)  # entity id -> its metadata
    pending: dict[str, Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/idp"

    def config(self, key_file: Path | None = None, cert_file: Path | None = None) -> IdPConfig:
        conf = IdPConfig()
        conf.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": get_xmlsec_binary(["/usr/bin"]),
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [(f"{self.base_url}/sso/redirect", BINDING_HTTP_REDIRECT)],
                        },
                        "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                        "want_authn_requests_signed": True,
                    }
                },
                "metadata": {"inline": list(self.sp_metadata.values())},
                "key_file": str(key_file or self.key_file),
                "cert_file": str(cert_file or self.cert_file),
            }
        )
        conf.attribute_converters = [_converter()]
        return conf

    def server(self, key_file: Path | None = None, cert_file: Path | None = None) -> Server:
        return Server(config=self.config(key_file, cert_file))

    def trust(self, entity_id: str, sp_metadata: str) -> None:
        """Take a service provider's metadata (its ACS, its signing key): the IdP answers it from then on."""
        with self._lock:
            self.sp_metadata[entity_id] = sp_metadata

    def metadata(self) -> str:
        text = create_metadata_string(None, config=self.config(), sign=False)
        return text.decode() if isinstance(text, bytes) else text

    # --- the protocol -----------------------------------------------------------------------------

    def receive(self, query: str) -> tuple[str, Pending]:
        """An AuthnRequest sent by HTTP-Redirect (its query string), its signature checked: a key and what
        the IdP will answer."""
        params = {k: v[0] for k, v in parse_qs(query).items()}
        server = self.server()
        parsed = server.parse_authn_request(
            params["SAMLRequest"], BINDING_HTTP_REDIRECT, relay_state=params.get("RelayState"),
            sigalg=params.get("SigAlg"), signature=params.get("Signature"),
        )
        message = parsed.message  # want_authn_requests_signed: its signature was checked with the SP's key
        pending = Pending(
            request_id=message.id,
            sp_entity_id=message.issuer.text,
            acs_url=message.assertion_consumer_service_url
            or server.config.metadata.assertion_consumer_service(message.issuer.text, BINDING_HTTP_POST)[0]["location"],
            relay_state=params.get("RelayState", ""),
        )
        key = secrets.token_urlsafe(16)
        with self._lock:
            self.pending[key] = pending
        return key, pending

    def receive_url(self, url: str) -> tuple[str, Pending]:
        return self.receive(urlparse(url).query)

    def response(
        self,
        pending: Pending,
        login: str,
        *,
        sign_assertion: bool = True,
        audience: str | None = None,
        lifetime_minutes: float = 5,
        in_response_to: str | None | type[Ellipsis] = ...,
        destination: str | None = None,
        forged_key: tuple[Path, Path] | None = None,
        weak_signature: bool = False,
        persistent_name_id: bool = False,
        sign_response: bool = False,
        encrypt_for: Path | None = None,
    ) -> str:
        """The SAMLResponse (base64) answering `pending` for the user `login`. The keywords make it hostile:
        unsigned, for another audience, expired (a negative lifetime), answering another request, sent to
        another address, signed with a key that is not the IdP's, or with SHA-1. `encrypt_for`: the assertion encrypted
        for that certificate (the SP's, from its metadata, as Shibboleth does by default); `sign_response`: the
        Response signed too."""
        user = self.users[login]
        server = self.server(*(forged_key or (None, None)))
        sp = audience or pending.sp_entity_id
        answer = server.create_authn_response(
            user.identity(),
            in_response_to=pending.request_id if in_response_to is ... else in_response_to,
            destination=destination or pending.acs_url,
            sp_entity_id=sp,
            name_id=NameID(
                format=NAMEID_FORMAT_PERSISTENT if persistent_name_id else NAMEID_FORMAT_TRANSIENT,
                text=f"persistent-{user.educonnect_id}" if persistent_name_id else secrets.token_hex(16),
                sp_name_qualifier=sp,
            ),
            authn={"class_ref": PASSWORD_CONTEXT, "authn_auth": self.entity_id},
            sign_assertion=sign_assertion,
            sign_response=sign_response,
            encrypt_assertion=encrypt_for is not None,
            encrypt_cert_assertion=encrypt_for.read_text() if encrypt_for else None,
            release_policy=_release(lifetime_minutes),
            sign_alg=SIG_RSA_SHA1 if weak_signature else SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA1 if weak_signature else DIGEST_SHA256,
        )
        return base64.b64encode(str(answer).encode()).decode()

    # --- over HTTP -----------------------------------------------------------------------------------

    def app(self) -> Starlette:
        async def metadata(_: Request) -> Response:
            return Response(self.metadata(), media_type="application/samlmetadata+xml")

        async def sso(request: Request) -> Response:
            try:
                key, pending = self.receive(request.url.query)
            except Exception as exc:  # noqa: BLE001 - a test IdP says why it refuses
                return HTMLResponse(f"<p>Demande refusée : {html.escape(str(exc))}</p>", status_code=400)
            return HTMLResponse(
                "<!doctype html><html lang='fr'><head><title>EduConnect (test)</title></head><body>"
                "<h1>EduConnect — identité de test</h1>"
                f"<form method='post' action='/sso/login'><input type='hidden' name='key' value='{key}'>"
                "<label for='login'>Identifiant</label> <input id='login' name='login'>"
                "<button type='submit'>Se connecter</button></form></body></html>"
            )

        async def login(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode()))
            with self._lock:
                pending = self.pending.pop(str(form.get("key")), None)
            if pending is None or str(form.get("login")) not in self.users:
                return HTMLResponse("<p>Identifiant inconnu.</p>", status_code=401)
            saml_response = self.response(pending, str(form["login"]))
            return HTMLResponse(post_form(pending.acs_url, saml_response, pending.relay_state))

        return Starlette(routes=[
            Route("/metadata", metadata), Route("/sso/redirect", sso), Route("/sso/login", login, methods=["POST"]),
        ])


def post_form(action: str, saml_response: str, relay_state: str) -> str:
    """The HTTP-POST binding: a page whose form the browser posts to the SP's ACS by itself."""
    return (
        "<!doctype html><html><body onload='document.forms[0].submit()'>"
        f"<form method='post' action='{html.escape(action)}'>"
        f"<input type='hidden' name='SAMLResponse' value='{saml_response}'>"
        f"<input type='hidden' name='RelayState' value='{html.escape(relay_state)}'>"
        "<noscript><button type='submit'>Continuer</button></noscript></form>"
        "<script>document.forms[0].submit()</script></body></html>"
    )


def decode(saml_response: str) -> str:
    return base64.b64decode(saml_response).decode()


def encode(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def form_fields(page: str) -> dict[str, Any]:
    """The hidden fields of the IdP's auto-posted page."""
    return {m.group(1): html.unescape(m.group(2)) for m in re.finditer(r"name='([A-Za-z]+)' value='([^']*)'", page)}
