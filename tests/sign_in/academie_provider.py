"""The académie's OpenID Connect provider, real, as the tests run it: node-oidc-provider under Node.js.

`AcademieProvider` installs the provider's npm packages once (`npm ci`, kept in provider/node_modules),
writes its configuration (users with ministry-style claims, Passpro's client, the API audience, its
signing keys, made here so that a test can rotate them or sign as the provider would), starts it on a
free port and stops it. `walk` follows a sign-in through the provider's login form as a browser would.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
CLIENT_ID = "passpro"
AUDIENCE = "https://passpro.ac-paris.fr/api"
TEST_BASE = "http://testserver"  # the TestClient's origin

COLLEGE = "0752536Z"  # Collège Voltaire
OTHER_COLLEGE = "0751790N"  # Collège Pierre Alviset
LYCEE = "0752845K"  # LP Théophile Gautier
OTHER_LYCEE = "0750788Z"  # LP Marcel Deprez
RECTORAT_UAI = "0754444X"  # the rectorat's own code in the directory: no establishment of Passpro's


def rne(uai: str, kind: str = "CLG") -> str:
    """A FrEduRne value as the ministry's directory writes it: UAI$type$sector$...$kind$..."""
    return f"{uai}$UAJ$PU$N$T3${kind}$340"


def ministry_claims(role: str, uai: str | None) -> dict[str, object]:
    """The directory claims of a person who holds `role` in `uai` (what the default mapping reads back)."""
    kind = "LP" if role in ("proviseur", "lycee_staff") else "CLG"
    if role in ("principal", "proviseur"):
        return {"FrEduRne": [rne(uai, kind)], "FrEduRneResp": [rne(uai, kind)], "FrEduFonctAdm": "DIR"}
    if role == "referent":
        return {"FrEduRne": [rne(uai)], "FrEduFonctAdm": "ENS", "groups": ["passpro-referents"]}
    if role == "lycee_staff":
        return {"FrEduRne": [rne(uai, kind)], "FrEduFonctAdm": "ENS", "groups": ["passpro-lycee"]}
    return {"FrEduRne": [rne(RECTORAT_UAI, "REC")], "FrEduFonctAdm": "ADM", "groups": ["passpro-rectorat"]}


# The people of the browser and hostile tests: sub -> directory claims.
PEOPLE: dict[str, dict[str, object]] = {
    "anne.principale": {"name": "Anne Principale", **ministry_claims("principal", COLLEGE)},
    "paul.proviseur": {"name": "Paul Proviseur", **ministry_claims("proviseur", LYCEE)},
    "claire.referente": {"name": "Claire Référente", **ministry_claims("referent", COLLEGE)},
    "louis.lycee": {"name": "Louis Lycée", **ministry_claims("lycee_staff", LYCEE)},
    "rita.rectorat": {"name": "Rita Rectorat", **ministry_claims("rectorat", None)},
    # A teacher of the collège whom no group names: no role in Passpro.
    "tom.enseignant": {"name": "Tom Enseignant", "FrEduRne": [rne(COLLEGE)], "FrEduFonctAdm": "ENS"},
    # The head of two collèges at once (an interim): no choice page, so no session.
    "dora.deuxcolleges": {
        "name": "Dora Deux-Collèges", "FrEduRne": [rne(COLLEGE), rne(OTHER_COLLEGE)],
        "FrEduRneResp": [rne(COLLEGE), rne(OTHER_COLLEGE)], "FrEduFonctAdm": "DIR",
    },
}


def matrix_sub(role: str, uai: str | None) -> str:
    """The provider's subject for a caller of the rights matrix: the user_id its expected actor names."""
    return f"{role}-{uai or 'rectorat'}"


# The callers of the rights matrix (tests/services/matrix.py), each in the directory as its role would be.
MATRIX_PEOPLE: dict[str, dict[str, object]] = {
    matrix_sub(role, uai): ministry_claims(role, uai)
    for role, uais in {
        "principal": (COLLEGE, OTHER_COLLEGE), "referent": (COLLEGE, OTHER_COLLEGE),
        "lycee_staff": (LYCEE, OTHER_LYCEE), "proviseur": (LYCEE, OTHER_LYCEE), "rectorat": (None,),
    }.items()
    for uai in uais
}


def new_key(kid: str) -> dict[str, object]:
    """A private RSA JWK for the provider to sign with."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = RSAAlgorithm.to_jwk(private, as_dict=True)
    data.pop("key_ops", None)  # PyJWT writes ["sign"], which the provider would publish in its JWKS as is
    return {**data, "kid": kid, "alg": "RS256", "use": "sig"}


def new_ec_key(kid: str) -> dict[str, object]:
    """A private P-256 JWK (ES256): the provider publishes it beside its RSA keys."""
    data = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    data.pop("key_ops", None)
    return {**data, "kid": kid, "alg": "ES256", "use": "sig"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def npm_ci() -> None:
    """Install the provider's packages from package-lock.json once (node_modules is kept between runs)."""
    installed = PROVIDER_DIR / "node_modules" / ".package-lock.json"
    lock = PROVIDER_DIR / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (apt-get install nodejs npm)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PROVIDER_DIR, check=True, timeout=300,
    )


class AcademieProvider:
    """One running provider: its issuer URL, client, audience, keys and users."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = CLIENT_ID
        self.client_secret = secrets.token_urlsafe(32)
        self.audience = AUDIENCE
        self.keys = [new_key("cle-1"), new_ec_key("cle-ec-1")]  # the first signs what the provider issues
        self.bases = [TEST_BASE]  # the origins of the services that sign in through it
        self.users: dict[str, dict[str, object]] = {**PEOPLE, **MATRIX_PEOPLE}
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "provider.log"

    # --- the process -------------------------------------------------------------------------------------

    def config(self) -> dict[str, object]:
        return {
            "port": self.port, "issuer": self.issuer, "audience": self.audience, "keys": self.keys,
            "cookie_key": secrets.token_urlsafe(24), "users": self.users,
            "clients": [{
                "client_id": self.client_id, "client_secret": self.client_secret, "client_name": "Passpro",
                "grant_types": ["authorization_code"], "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
                "redirect_uris": [f"{base}/auth/callback" for base in self.bases],
                "post_logout_redirect_uris": [f"{base}/connexion?fait=deconnexion" for base in self.bases],
            }],
        }

    def start(self) -> None:
        npm_ci()
        path = self.workdir / "provider.json"
        path.write_text(json.dumps(self.config()), encoding="utf-8")
        node = shutil.which("node") or "/usr/bin/node"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [node, str(PROVIDER_DIR / "provider.mjs"), str(path)], cwd=PROVIDER_DIR, stdout=log,
            stderr=subprocess.STDOUT, env={**os.environ, "NODE_ENV": "test"},
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited: {self.log_path.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the OIDC provider did not answer: {self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Again with the configuration as it is now (new keys, users or services); its sessions are lost."""
        self.stop()
        self.start()

    def rotate_keys(self) -> None:
        """A new signing key first in the JWKS, the old one kept for the tokens it signed."""
        self.keys = [new_key(f"cle-{len(self.keys) + 1}"), *self.keys]
        self.restart()

    # --- what the tests ask of it ---------------------------------------------------------------------------

    def settings(self, **more: object) -> dict[str, object]:
        """The Passpro settings that sign in through this provider."""
        return {
            "oidc_issuer": self.issuer, "oidc_client_id": self.client_id, "oidc_client_secret": self.client_secret,
            "oidc_audience": self.audience, "oidc_jwks_refresh_seconds": 0.0, **more,
        }

    def tamper(self, mode: str) -> None:
        """The ID token of the next token response is rewritten so (see provider.mjs)."""
        httpx.post(f"{self.issuer}/__test/tamper", json={"mode": mode}, timeout=5).raise_for_status()

    def sign(self, claims: dict[str, object], *, key: dict[str, object] | None = None, kid: str | None = None) -> str:
        """A JWT signed RS256 with the provider's current key (or `key`), as the provider would sign one."""
        key = key or self.keys[0]
        algorithm = str(key.get("alg", "RS256"))
        private = (ECAlgorithm if algorithm == "ES256" else RSAAlgorithm).from_jwk(json.dumps(key))
        return jwt.encode(claims, private, algorithm=algorithm, headers={"kid": kid or str(key["kid"])})

    def token_claims(self, sub: str, **changes: object) -> dict[str, object]:
        now = int(time.time())
        claims = {
            "sub": sub, "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + 600,
            "client_id": self.client_id, "scope": "api", **self.users.get(sub, {}),
        }
        return {**claims, **changes}

    def walk(self, url: str, sub: str, browser: httpx.Client, stop_at: str) -> str:
        """Follow `url` at the provider as a browser: sign in as `sub` on its login form, and return the first
        redirect towards `stop_at` (the service's callback with its code and state)."""
        for _ in range(20):
            if url.startswith(stop_at):
                return url
            answer = browser.get(url)
            if answer.status_code in (302, 303):
                url = urljoin(url, answer.headers["location"])
                continue
            if answer.status_code == 200 and 'name="login"' in answer.text:
                action = answer.text.split('action="', 1)[1].split('"', 1)[0]
                posted = browser.post(urljoin(url, action), data={"prompt": "login", "login": sub, "password": "x"})
                assert posted.status_code in (302, 303), posted.text
                url = urljoin(url, posted.headers["location"])
                continue
            raise AssertionError(f"unexpected answer from the provider at {url}: {answer.status_code} {answer.text[:500]}")
        raise AssertionError("too many redirects at the provider")

    def access_token(self, sub: str, redirect_base: str = TEST_BASE) -> str:
        """A real access token of the provider for the API (authorization code + PKCE with the resource)."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        redirect_uri = f"{redirect_base}/auth/callback"
        params = {
            "client_id": self.client_id, "response_type": "code", "scope": "openid profile api",
            "redirect_uri": redirect_uri, "code_challenge": challenge, "code_challenge_method": "S256",
            "state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16), "resource": self.audience,
        }
        with httpx.Client(follow_redirects=False, timeout=10) as browser:
            start = str(httpx.URL(f"{self.issuer}/auth", params=params))
            back = self.walk(start, sub, browser, redirect_uri)
            code = parse_qs(urlparse(back).query)["code"][0]
            answer = browser.post(
                f"{self.issuer}/token", auth=(self.client_id, self.client_secret),
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                      "code_verifier": verifier, "resource": self.audience},
            )
        answer.raise_for_status()
        return answer.json()["access_token"]


@contextlib.contextmanager
def running_provider(workdir: Path) -> Iterator[AcademieProvider]:
    provider = AcademieProvider(workdir)
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()
