"""EduConnect (SPEC §8): students sign in through the académie's SAML 2.0 identity provider, and the first time
link their EduConnect identity to their INE with the access code of SPEC §6.

pysaml2 is the service provider (it signs the AuthnRequest and checks the assertion's signature with the
`xmlsec1` program, against the IdP's key from its metadata): `/saml/metadata`, `/saml/login` (AuthnRequest by
HTTP-Redirect), `/saml/acs` (the Response by HTTP-POST). What pysaml2 checks is asked of it (signed assertions
required, audience, recipient, NotOnOrAfter, InResponseTo of an outstanding request); what it leaves to its
caller is here: the outstanding requests and the assertions already used are kept in Redis, each request used
once and each assertion once (a replay is refused), and the Destination must be this ACS.

EduConnect gives no INE in clear: its stable identifier (FrEduCtId by default) is kept only as an HMAC digest,
linked to the INE in registration's database (`educonnect_links`: erased with the student, purged with the
campaign) once the student has typed their access code on `/eleve/educonnect`.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.cache import Cache
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_URI
from saml2.sigver import get_xmlsec_binary
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
from saml2.time_util import str_to_time
from sqlalchemy import Engine, delete, insert, select

from services.registration import access_codes, student_api
from services.registration.student_api import student_path
from services.registration.views import educonnect_links, student_files
from shared.contracts.identifiers import check_ine, normalise
from shared.fr.formats import minutes_to_wait
from shared.runtime import tries
from shared.runtime.http.app import Runtime, runtime
from shared.runtime.http.auth import InvalidToken, Principal, issue_token
from shared.web.forms import read_form
from shared.web.pages import web
from shared.web.session import set_cookie

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# EduConnect's attributes, by their SAML names (the OIDs EduConnect's connectors read); a map file may name
# others (PASSPRO_SAML_ATTRIBUTE_MAP, docs/educonnect.md). `identity` is the attribute that identifies a
# student for good (or "NameID" for a persistent NameID); `student_types` the user types that are students.
DEFAULT_ATTRIBUTE_MAP: dict[str, Any] = {
    "identity": "urn:oid:1.3.6.1.4.1.20326.10.999.1.57",  # FrEduCtId
    "user_type": "urn:oid:1.3.6.1.4.1.20326.10.999.1.7",  # FrEduCtPersonAffiliation: eleve2d, resp2d...
    "uai": "urn:oid:1.3.6.1.4.1.20326.10.999.1.72",  # FrEduCtEleveUAI: the student's school
    "birth_date": "urn:oid:1.3.6.1.4.1.20326.10.999.1.67",  # FrEduCtDateNaissance
    "ine_hash": "urn:oid:1.3.6.1.4.1.20326.10.999.1.64",  # FrEduCtEleveINEHash (EduConnect gives no INE in clear)
    "student_types": ["eleve2d"],
}
ATTRIBUTE_KEYS = ("identity", "user_type", "uai", "birth_date", "ine_hash")

# Sign-ins started from one address (each signs an AuthnRequest and keeps it in Redis) counted as wrong access
# codes are (access_codes.count_try): past this many without a verified answer, 429 for LOCK_SECONDS. A whole
# class signing in at once from its collège's one address stays under it; a verified answer clears the count.
LOGIN_STARTS = tries.STARTS_PER_ADDRESS
REQUEST_SECONDS = 600  # an AuthnRequest answered later than this is refused (the student starts again)
PENDING_SECONDS = 900  # how long a verified, unlinked identity waits for its access code
CLOCK_SKEW_SECONDS = 60
METADATA_SECONDS = 3600  # the IdP's metadata (its keys) is read again after this
# SHA-1, MD5 and RIPEMD-160 signatures and digests are refused (xmlsec1 would verify them).
WEAK_ALGORITHMS = frozenset({
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1", "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
    "http://www.w3.org/2000/09/xmldsig#sha1", "http://www.w3.org/2001/04/xmldsig-more#md5",
})


def _as_list(value: Any) -> list:
    """pysaml2's elements hold one child or a list of them."""
    return value if isinstance(value, list) else [] if value is None else [value]


def _weak(algorithm: str) -> bool:
    return algorithm in WEAK_ALGORITHMS or any(name in algorithm for name in ("md5", "sha1", "ripemd160"))


SUBJECT_KEY_INFO = b"passpro-educonnect-subject-v1"
SERVICE_NAME = "Passpro — académie de Paris"
PENDING_COOKIE = "passpro_registration_educonnect"

NOT_CONFIGURED = (
    "La connexion avec ÉduConnect n'est pas ouverte ici : connecte-toi avec le code d'accès que ton référent "
    "t'a donné."
)
REFUSED = "ÉduConnect n'a pas pu confirmer ton identité. Recommence la connexion depuis le début."
NOT_A_STUDENT = (
    "Cet espace est celui des élèves : ce compte ÉduConnect n'est pas un compte d'élève. "
    "Les parents suivent le dossier avec leur enfant et son collège."
)
OTHER_SCHOOL = (
    "ÉduConnect te rattache à un autre établissement que le collège qui t'a inscrit dans Passpro : "
    "tu ne peux pas entrer avec ÉduConnect. Connecte-toi avec ton code d'accès et parles-en à ton référent."
)

TOO_MANY_STARTS = (
    "Trop de connexions avec ÉduConnect commencées depuis ce réseau sans aller au bout. "
    "Attends {wait} avant de réessayer, ou connecte-toi avec ton code d'accès."
)


def same_school(identity_uai: str | None, college_uai: str) -> bool:
    """Does the school EduConnect gives (FrEduCtEleveUAI) match the student's collège in Passpro? An assertion
    that names no school does not."""
    return bool(identity_uai) and identity_uai.strip().upper() == college_uai.strip().upper()


class SignInRefused(Exception):
    """An answer of the IdP that opens no session: a code for the logs, a French message for the student."""

    def __init__(self, code: str, message: str = REFUSED, status: int = 401) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status


class IdPUnavailable(Exception):
    """EduConnect's metadata cannot be read (unreachable, invalid): no sign-in with EduConnect for now."""


UNAVAILABLE = (
    "ÉduConnect ne répond pas pour l'instant : réessaie dans quelques minutes, "
    "ou connecte-toi avec ton code d'accès."
)


# --- the attribute map ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeMap:
    identity: str
    user_type: str
    uai: str
    birth_date: str
    ine_hash: str
    student_types: tuple[str, ...]

    @classmethod
    def load(cls, path: Path | None) -> AttributeMap:
        """The map file's entries over the default; an unknown key or a missing value is refused."""
        given = json.loads(path.read_text(encoding="utf-8")) if path else {}
        if not isinstance(given, dict) or set(given) - set(DEFAULT_ATTRIBUTE_MAP):
            raise ValueError(f"PASSPRO_SAML_ATTRIBUTE_MAP: keys are {', '.join(DEFAULT_ATTRIBUTE_MAP)}")
        merged = {**DEFAULT_ATTRIBUTE_MAP, **given}
        if not all(isinstance(merged[k], str) and merged[k] for k in ATTRIBUTE_KEYS):
            raise ValueError("PASSPRO_SAML_ATTRIBUTE_MAP: each attribute is a non-empty name")
        types = merged["student_types"]
        if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
            raise ValueError("PASSPRO_SAML_ATTRIBUTE_MAP: student_types is a non-empty list of user types")
        return cls(**{k: merged[k] for k in ATTRIBUTE_KEYS}, student_types=tuple(types))

    def requested(self) -> list[str]:
        return [name for name in (self.identity, self.user_type, self.uai, self.birth_date, self.ine_hash)
                if name != "NameID"]


@dataclass(frozen=True)
class Identity:
    """What a verified assertion says of the person: the IdP, their stable identifier and the attributes."""

    issuer: str
    subject: str
    user_type: str
    uai: str | None
    birth_date: str | None
    ine_hash: str | None

    def is_student(self, attributes: AttributeMap) -> bool:
        return self.user_type in attributes.student_types


def _attribute_values(assertion) -> dict[str, list[str]]:
    """The assertion's attributes by name and by friendly name (after pysaml2 decrypted any encrypted one)."""
    values: dict[str, list[str]] = {}
    for statement in assertion.attribute_statement:
        for attribute in statement.attribute:
            texts = [v.text.strip() for v in attribute.attribute_value if v.text and v.text.strip()]
            for name in (attribute.name, attribute.friendly_name):
                if name:
                    values.setdefault(name, []).extend(texts)
    return values


def identity_of(response, attributes: AttributeMap) -> Identity:
    assertion = response.assertion
    values = _attribute_values(assertion)

    def one(name: str) -> str | None:
        found = values.get(name) or []
        return found[0] if len(set(found)) == 1 else None

    if attributes.identity == "NameID":
        name_id = response.name_id
        persistent = name_id is not None and (name_id.format or "").endswith(":persistent")
        subject = name_id.text if persistent else None
    else:
        subject = one(attributes.identity)
    user_type = one(attributes.user_type)
    if not subject or not user_type:
        raise SignInRefused("attributes_missing")
    return Identity(
        issuer=assertion.issuer.text.strip(), subject=subject, user_type=user_type, uai=one(attributes.uai),
        birth_date=one(attributes.birth_date), ine_hash=one(attributes.ine_hash),
    )


# --- the service provider ---------------------------------------------------------------------------


class _NoIdentityCache(Cache):
    """pysaml2's client keeps every person it saw in memory; Passpro keeps nothing of them there."""

    def set(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class ServiceProvider:
    """pysaml2's SP for one app, from the registration settings; built at first use, rebuilt hourly (the IdP's
    metadata, with its keys, is read again)."""

    settings: Any

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Saml2Client | None = None
        self._built_at = 0.0
        self.attributes = AttributeMap.load(self.settings.saml_attribute_map)
        if self.configured:  # what can be checked without the network, before the service starts
            files = (self.settings.saml_sp_key, self.settings.saml_sp_cert)
            if not self.settings.saml_sp_base_url or not all(path and Path(path).is_file() for path in files):
                raise ValueError(
                    "EduConnect: PASSPRO_SAML_IDP_METADATA needs PASSPRO_SAML_SP_BASE_URL and the SP's key and "
                    "certificate files (PASSPRO_SAML_SP_KEY, PASSPRO_SAML_SP_CERT)"
                )

    @property
    def configured(self) -> bool:
        return bool(self.settings.saml_idp_metadata)

    @property
    def base_url(self) -> str:
        if not self.settings.saml_sp_base_url:
            raise ValueError("PASSPRO_SAML_SP_BASE_URL must be set with PASSPRO_SAML_IDP_METADATA")
        return self.settings.saml_sp_base_url.rstrip("/")

    @property
    def entity_id(self) -> str:
        return self.settings.saml_sp_entity_id or f"{self.base_url}/saml/metadata"

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/saml/acs"

    def config(self, with_idp: bool = True) -> SPConfig:
        """pysaml2's SP configuration; `with_idp`: with the IdP's metadata (read from its file or URL)."""
        s = self.settings
        if not (s.saml_sp_key and s.saml_sp_cert):
            raise ValueError("PASSPRO_SAML_SP_KEY and PASSPRO_SAML_SP_CERT must name the SP's key and certificate")
        source = s.saml_idp_metadata
        metadata = {"remote": [{"url": source}]} if source.startswith(("https://", "http://")) else {"local": [source]}
        conf = SPConfig()
        conf.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": get_xmlsec_binary(["/usr/bin", "/usr/local/bin"]),
                "name": SERVICE_NAME,  # the AuthnRequest's ProviderName, the metadata's ServiceName
                "service": {
                    "sp": {
                        "endpoints": {"assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]},
                        "allow_unsolicited": False,
                        "authn_requests_signed": True,
                        "want_assertions_signed": True,
                        "want_response_signed": False,
                        "only_use_keys_in_metadata": True,
                        "requested_attribute_name_format": NAME_FORMAT_URI,
                        "signing_algorithm": SIG_RSA_SHA256,
                        "digest_algorithm": DIGEST_SHA256,
                        "required_attributes": self.attributes.requested(),
                    }
                },
                **({"metadata": metadata} if with_idp else {}),
                "key_file": str(s.saml_sp_key),
                "cert_file": str(s.saml_sp_cert),
                "encryption_keypairs": [{"key_file": str(s.saml_sp_key), "cert_file": str(s.saml_sp_cert)}],
                "accepted_time_diff": CLOCK_SKEW_SECONDS,
                "allow_unknown_attributes": True,
            }
        )
        return conf

    def client(self) -> Saml2Client:
        """pysaml2's client with the IdP's metadata; IdPUnavailable when it cannot be read (a refresh that fails
        keeps the previous metadata and is tried again a minute later)."""
        with self._lock:
            if self._client is None or time.monotonic() - self._built_at > METADATA_SECONDS:
                try:
                    client = Saml2Client(config=self.config(), identity_cache=_NoIdentityCache())
                    self.idp_entity_id(client)
                except Exception as exc:  # noqa: BLE001 - pysaml2 fails on unreadable metadata in many ways
                    log.error("EduConnect: the IdP's metadata cannot be read: %s: %s", type(exc).__name__, exc)
                    if self._client is None:
                        raise IdPUnavailable() from exc
                    self._built_at = time.monotonic() - METADATA_SECONDS + 60
                else:
                    self._client, self._built_at = client, time.monotonic()
            return self._client

    def idp_entity_id(self, client: Saml2Client) -> str:
        idps = list(client.metadata.identity_providers())
        if len(idps) != 1:
            raise ValueError(f"the IdP metadata must describe one identity provider, not {len(idps)}")
        return idps[0]

    def metadata(self) -> str:
        """The SP's metadata; of the algorithms xmlsec1 supports, only those Passpro accepts are advertised."""
        descriptor = entity_descriptor(self.config(with_idp=False))  # served even when the IdP is down
        for sso in _as_list(descriptor.spsso_descriptor):
            for service in _as_list(sso.attribute_consuming_service):
                for name in _as_list(service.service_name):
                    name.lang = "fr"  # pysaml2 says "en" of a name given as a plain string
        if descriptor.extensions is not None:
            descriptor.extensions.extension_elements = [
                element for element in descriptor.extensions.extension_elements
                if not _weak(element.attributes.get("Algorithm", ""))
            ]
        return descriptor.to_string().decode()

    def authn_request(self, relay_state: str) -> tuple[str, str]:
        """(request id, the IdP's address carrying the signed AuthnRequest)."""
        client = self.client()
        request_id, info = client.prepare_for_authenticate(
            entityid=self.idp_entity_id(client), relay_state=relay_state, binding=BINDING_HTTP_REDIRECT,
        )
        location = dict(info["headers"])["Location"]
        return request_id, location

    def verify(self, saml_response: str, request_id: str) -> tuple[Identity, str, float]:
        """The identity a Response answering `request_id` vouches for, its assertion's id and NotOnOrAfter
        (seconds since the epoch); SignInRefused when pysaml2 or the checks it leaves to us refuse it."""
        client = self.client()
        try:
            response = client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding={request_id: "/"},
                conv_info={"entity_id": self.entity_id},
            )
        except Exception as exc:  # noqa: BLE001 - pysaml2 says no in many exception types; each is a refusal
            log.info("EduConnect response refused by pysaml2: %s: %s", type(exc).__name__, exc)
            raise SignInRefused("invalid_response") from None
        if response is None or response.assertion is None:
            raise SignInRefused("invalid_response")
        if response.response.destination != self.acs_url:  # pysaml2 checks it only when present
            raise SignInRefused("wrong_destination")
        if response.in_response_to != request_id:
            raise SignInRefused("unsolicited")
        idp = self.idp_entity_id(client)
        assertion = response.assertion
        if assertion.signature is None or assertion.issuer is None or assertion.issuer.text.strip() != idp:
            raise SignInRefused("wrong_issuer")
        if response.response.issuer is not None and response.response.issuer.text.strip() != idp:
            raise SignInRefused("wrong_issuer")
        signed = assertion.signature.signed_info
        if _weak(signed.signature_method.algorithm) or any(
            _weak(reference.digest_method.algorithm) for reference in signed.reference
        ):
            raise SignInRefused("weak_signature")
        identity = identity_of(response, self.attributes)
        expires = time.time() + REQUEST_SECONDS
        if assertion.conditions is not None and assertion.conditions.not_on_or_after:
            expires = calendar.timegm(str_to_time(assertion.conditions.not_on_or_after))
        return identity, assertion.id, expires


def in_response_to(saml_response: str) -> str | None:
    """The InResponseTo of a posted Response, read before anything is verified (it names the request to check
    against) with pysaml2's parser (defusedxml: no DTD, no entity); None when the text is no SAML Response."""
    try:
        response = samlp.response_from_string(base64.b64decode(saml_response, validate=False))
    except Exception as exc:  # noqa: BLE001 - base64, XML and schema errors alike: not a Response
        log.info("EduConnect response unreadable: %s", type(exc).__name__)
        return None
    value = response.in_response_to if response is not None else None
    return value if value and len(value) <= 128 else None


# --- state kept in Redis: outstanding requests, used assertions, identities waiting for their code -------


def _key(rt: Runtime, kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()
    return f"{rt.keys.prefix}:educonnect:{kind}:{digest}"


def subject_digest(rt: Runtime, identity: Identity) -> str:
    """The EduConnect identity as Passpro keeps it: an HMAC under a key derived from the master key."""
    key = rt.settings.master().derive(SUBJECT_KEY_INFO, b"")
    return hmac.new(key, f"{identity.issuer}\n{identity.subject}".encode(), hashlib.sha256).hexdigest()


async def _first_use_of_assertion(rt: Runtime, assertion_id: str, expires: float) -> bool:
    ttl = max(int(expires - time.time()) + CLOCK_SKEW_SECONDS, 1)
    return bool(await rt.redis.set(_key(rt, "assertion", assertion_id), "1", nx=True, ex=ttl))


# --- the links ----------------------------------------------------------------------------------------


def linked_student(engine: Engine, campaign: str, subject: str) -> tuple[str, str] | None:
    """(INE, collège) of the student this EduConnect identity is linked to in `campaign`, if the student is
    still in registration's view."""
    with engine.connect() as conn:
        row = conn.execute(
            select(educonnect_links.c.ine, student_files.c.college_uai)
            .join(student_files, (student_files.c.campaign == educonnect_links.c.campaign)
                  & (student_files.c.ine == educonnect_links.c.ine))
            .where(educonnect_links.c.campaign == campaign, educonnect_links.c.subject == subject)
        ).first()
    return (row.ine, row.college_uai) if row and row.college_uai else None


def save_link(engine: Engine, campaign: str, subject: str, ine: str, now: datetime) -> None:
    """The identity linked to the INE in `campaign`; an earlier link of the INE or of the identity replaced."""
    with engine.begin() as conn:
        conn.execute(delete(educonnect_links).where(
            educonnect_links.c.campaign == campaign,
            (educonnect_links.c.ine == ine) | (educonnect_links.c.subject == subject),
        ))
        conn.execute(insert(educonnect_links).values(
            campaign=campaign, subject=subject, ine=ine, linked_at=now.isoformat(timespec="seconds"),
        ))


# --- the routes ---------------------------------------------------------------------------------------


def provider(request: Request) -> ServiceProvider:
    return request.app.state.educonnect


def refusal_page(request: Request, status: int, message: str) -> HTMLResponse:
    w = web(request)
    response = w.render(
        request, "educonnect/refus.html", {"who": w.visitor(request), "status": status, "message": message},
        status=status,
    )
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


@router.get("/saml/metadata")
async def sp_metadata(request: Request) -> Response:
    sp = provider(request)
    if not sp.configured:
        return refusal_page(request, 404, NOT_CONFIGURED)
    text = await asyncio.to_thread(sp.metadata)
    return Response(text, media_type="application/samlmetadata+xml")


@router.get("/saml/login")
async def login(request: Request) -> Response:
    sp, rt = provider(request), runtime(request)
    if not sp.configured:
        return refusal_page(request, 404, NOT_CONFIGURED)
    left = await asyncio.to_thread(access_codes.count_try, rt.engine, rt.address_key(request), rt.clock(), LOGIN_STARTS)
    if left is not None:  # before any signature or Redis key
        log.info("EduConnect sign-in start refused: too many from one address")
        response = refusal_page(request, 429, TOO_MANY_STARTS.format(wait=minutes_to_wait(left)))
        response.headers["Retry-After"] = str(left)
        return response
    suite = student_path(request.query_params.get("suite") or request.query_params.get("next"))
    relay_state = secrets.token_urlsafe(16)
    try:
        request_id, location = await asyncio.to_thread(sp.authn_request, relay_state)
    except IdPUnavailable:
        return refusal_page(request, 503, UNAVAILABLE)
    state = json.dumps({"suite": suite, "relay_state": relay_state})
    await rt.redis.set(_key(rt, "request", request_id), state, ex=REQUEST_SECONDS)
    return RedirectResponse(location, status_code=303)


@router.post("/saml/acs")
async def assertion_consumer(request: Request) -> Response:
    """The IdP's answer, posted by the browser from the IdP's page: no CSRF token (a cross-site POST by
    design); what stands for it is the request it answers, outstanding and used once, and the signature."""
    sp, rt, w = provider(request), runtime(request), web(request)
    if not sp.configured:
        return refusal_page(request, 404, NOT_CONFIGURED)
    form = await read_form(request)
    saml_response = form.get("SAMLResponse", "")
    request_id = in_response_to(saml_response) if saml_response else None
    state = await rt.redis.getdel(_key(rt, "request", request_id)) if request_id else None
    if state is None:
        log.info("EduConnect response refused: unsolicited, unknown, expired or already used request")
        return refusal_page(request, 401, REFUSED)
    outstanding = json.loads(state)
    try:
        identity, assertion_id, expires = await asyncio.to_thread(sp.verify, saml_response, request_id)
        if form.get("RelayState") != outstanding["relay_state"]:
            raise SignInRefused("relay_state")
        if not identity.is_student(sp.attributes):
            raise SignInRefused("not_a_student", NOT_A_STUDENT, status=403)
        if not await _first_use_of_assertion(rt, assertion_id, expires):
            raise SignInRefused("replayed")
    except SignInRefused as refused:
        log.info("EduConnect sign-in refused: %s", refused.code)
        return refusal_page(request, refused.status, refused.message)
    except IdPUnavailable:
        return refusal_page(request, 503, UNAVAILABLE)
    await asyncio.to_thread(access_codes.forget_tries, rt.engine, rt.address_key(request))
    subject = subject_digest(rt, identity)
    student = await asyncio.to_thread(linked_student, rt.engine, rt.settings.campaign, subject)
    if student is not None:
        if not same_school(identity.uai, student[1]):
            log.info("EduConnect sign-in refused: the assertion's school is not the student's collège")
            return refusal_page(request, 403, OTHER_SCHOOL)
        return open_student_session(request, *student, outstanding["suite"])
    handle = secrets.token_urlsafe(32)
    pending = {"subject": subject, "uai": identity.uai, "suite": outstanding["suite"]}
    await rt.redis.set(_key(rt, "pending", handle), json.dumps(pending), ex=PENDING_SECONDS)
    response = RedirectResponse("/eleve/educonnect", status_code=303)
    set_cookie(response, request, PENDING_COOKIE, handle, max_age=PENDING_SECONDS)
    log.info("EduConnect identity verified, not linked yet: asking for the access code")
    return response


STUDENT_SESSION_SECONDS = 8 * 3600


def student_token(rt: Runtime, ine: str, college_uai: str) -> tuple[str, Principal]:
    """A session of role eleve for the student, as the access code's sign-in gives (SPEC §6)."""
    user_id = f"eleve.{ine}"  # as the access code's session names the student
    token = issue_token(
        rt.settings.jwt_secret, user_id=user_id, role="eleve", uai=college_uai, ine=ine, reference=rt.reference,
        ttl_seconds=STUDENT_SESSION_SECONDS, issuer=rt.settings.jwt_issuer,
    )
    return token, Principal(user_id=user_id, role="eleve", uai=college_uai, ine=ine)


def open_student_session(request: Request, ine: str, college_uai: str, suite: str) -> Response:
    rt, w = runtime(request), web(request)
    try:
        token, who = student_token(rt, ine, college_uai)
    except InvalidToken:  # the collège left the reference data since the student was registered
        log.warning("EduConnect sign-in: collège %s no longer in the reference data", college_uai)
        return refusal_page(request, 401, REFUSED)
    response = w.sign_in(request, token, who, suite)
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


async def _pending(request: Request) -> tuple[str, dict] | None:
    rt = runtime(request)
    handle = request.cookies.get(PENDING_COOKIE)
    if not handle or len(handle) > 64:
        return None
    found = await rt.redis.get(_key(rt, "pending", handle))
    return (handle, json.loads(found)) if found else None


EXPIRED = "Ta connexion avec ÉduConnect a expiré ou n'a pas eu lieu : recommence avec ÉduConnect."


def _link_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    return web(request).render(
        request, "educonnect/lien.html", {"who": None, "current": "connexion", **context}, status=status
    )


@router.get("/eleve/educonnect")
async def link_page(request: Request) -> Response:
    if not provider(request).configured:
        return refusal_page(request, 404, NOT_CONFIGURED)
    if await _pending(request) is None:
        return refusal_page(request, 401, EXPIRED)
    return _link_page(request)


@router.post("/eleve/educonnect")
async def link_with_access_code(request: Request) -> Response:
    """The first time: the access code of SPEC §6 ties the verified EduConnect identity to the INE, with the
    access code's own rules (a wrong code is a 401, the sixth try in a row a 429 until the wait is over)."""
    sp, rt, w = provider(request), runtime(request), web(request)
    if not sp.configured:
        return refusal_page(request, 404, NOT_CONFIGURED)
    form = await w.form(request)
    found = await _pending(request)
    if found is None:
        return refusal_page(request, 401, EXPIRED)
    handle, pending = found
    values = {"ine": form.get("ine", "")}
    ine = normalise(form.get("ine", ""))
    code = form.get("code", "")
    errors = {}
    if not isinstance(ine, str) or not ine:
        errors["ine"] = "Écris ton INE : il est sur ton carnet de correspondance ou ton bulletin."
    else:
        try:
            check_ine(ine)
        except ValueError:
            errors["ine"] = "Cet INE n'a pas la bonne forme : 11 caractères, par exemple 123456789AB."
    if not code.strip():
        errors["code"] = "Écris le code d'accès que ton référent t'a donné."
    elif len(code) > 40:
        errors["code"] = "Ce code est trop long : il a 12 caractères, par exemple ABCD-EFGH-JKMN."
    if errors:
        return _link_page(request, 422, values=values, errors=errors)
    try:  # the access code's own check, rules and answers (student_api: the API's and /eleve/connexion's)
        token, who, _ = await student_api.open_student_session(rt, ine, code)
    except student_api.TooManyTries as refused:
        response = _link_page(request, 429, values=values, message=refused.message)
        response.headers.update(refused.headers)
        return response
    except student_api.WrongCode as refused:
        log.info("EduConnect link refused: wrong access code")
        return _link_page(request, 401, values=values, message=refused.message)
    if not same_school(pending.get("uai"), who.uai or ""):
        await rt.redis.delete(_key(rt, "pending", handle))
        log.info("EduConnect link refused: the assertion's school is not the student's collège")
        return refusal_page(request, 403, OTHER_SCHOOL)
    await asyncio.to_thread(save_link, rt.engine, rt.settings.campaign, pending["subject"], ine, datetime.now(UTC))
    await rt.redis.delete(_key(rt, "pending", handle))
    log.info("EduConnect identity linked to a student's INE")
    response = w.sign_in(request, token, who, student_path(pending.get("suite")))
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


def install(app: FastAPI, settings: Any) -> None:
    # pysaml2 logs the subjects and attributes it reads at INFO and DEBUG: none of them reach the service's logs.
    logging.getLogger("saml2").setLevel(logging.WARNING)
    app.state.educonnect = ServiceProvider(settings)
    app.include_router(router)
