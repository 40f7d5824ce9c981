"""The provider's access tokens on the API (SPEC §8): accepted beside the HS256 service tokens, with the role
the claims mapping gives; an unknown key, another audience or issuer, an expired token or claims that give no
role: 401, nothing stored. The provider's keys are fetched again when it rotates them, never more than once
per refresh interval for made-up key ids."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from academie_provider import AcademieProvider, matrix_sub, new_key
from shared.contracts.reference import default_reference_text, parse_reference
from shared.runtime.claims_map import ClaimsMap
from shared.runtime.http.auth import InvalidToken
from shared.runtime.http.provider_tokens import ProviderTokens
from sign_in_world import ProviderPasspro

COLLEGE = "0752536Z"


@pytest.fixture
def passpro(redis_url: str, academie: str, tmp_path: Path, academie_provider: AcademieProvider) -> Iterator[ProviderPasspro]:
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        world = ProviderPasspro(
            redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client, provider=academie_provider,
        )
        world.open_campaign()
        yield world


@pytest.fixture
def registration(passpro: ProviderPasspro) -> Iterator[TestClient]:
    with passpro.client("registration") as client:
        yield client


def register(client: TestClient, token: str, ine: str = "123456789AB"):
    body = {
        "student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "claire.dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    }
    return client.post("/api/students", json=body, headers={"Authorization": f"Bearer {token}"})


def test_a_principals_provider_token_registers_a_student_as_that_principal(registration, academie_provider):
    token = academie_provider.access_token("anne.principale")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"

    answer = register(registration, token)

    assert answer.status_code == 201, answer.text
    assert answer.json()["event"]["actor"] == {"user_id": "anne.principale", "role": "principal", "uai": COLLEGE}


def test_a_token_signed_es256_by_the_providers_ec_key_is_accepted(registration, academie_provider):
    ec_key = next(key for key in academie_provider.keys if key["alg"] == "ES256")
    token = academie_provider.sign(academie_provider.token_claims("anne.principale"), key=ec_key)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"

    answer = register(registration, token)

    assert answer.status_code == 201, answer.text
    assert answer.json()["event"]["actor"]["role"] == "principal"


def test_the_service_tokens_still_work_beside_the_providers(passpro, registration):
    assert register(registration, passpro.token("principal", COLLEGE)).status_code == 201


@pytest.mark.parametrize("case", [
    "wrong_audience", "wrong_issuer", "expired", "unknown_key", "foreign_key_known_kid", "no_role",
    "two_establishments", "alg_none", "hs256_with_the_public_key",
])
def test_a_bad_provider_token_is_a_401_and_stores_nothing(passpro, registration, academie_provider, case):
    p = academie_provider
    sub = "anne.principale"
    stranger = new_key("cle-inconnue")
    tokens = {
        "wrong_audience": lambda: p.sign(p.token_claims(sub, aud="https://autre-application.example")),
        "wrong_issuer": lambda: p.sign(p.token_claims(sub, iss="https://faux-fournisseur.example")),
        "expired": lambda: p.sign(p.token_claims(sub, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        "unknown_key": lambda: p.sign(p.token_claims(sub), key=stranger),
        "foreign_key_known_kid": lambda: p.sign(p.token_claims(sub), key=stranger, kid=str(p.keys[0]["kid"])),
        "no_role": lambda: p.access_token("tom.enseignant"),
        "two_establishments": lambda: p.access_token("dora.deuxcolleges"),
        "alg_none": lambda: jwt.encode(p.token_claims(sub), None, algorithm="none", headers={"kid": p.keys[0]["kid"]}),
        "hs256_with_the_public_key": lambda: jwt.encode(
            p.token_claims(sub), p.keys[0]["n"], algorithm="HS256", headers={"kid": p.keys[0]["kid"]}),
    }
    token = tokens[case]()
    before = passpro.snapshot()

    answer = register(registration, token)

    assert (answer.status_code, answer.json()["error"]) == (401, "unauthenticated")
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert passpro.snapshot() == before


def test_a_token_signed_by_the_providers_new_key_is_accepted_after_a_rotation(passpro, academie_provider):
    with passpro.client("registration") as registration:
        assert register(registration, academie_provider.access_token("anne.principale"), "123456789AB").status_code == 201
        old_kid = academie_provider.keys[0]["kid"]

        academie_provider.rotate_keys()
        token = academie_provider.access_token("anne.principale")

        assert jwt.get_unverified_header(token)["kid"] != old_kid
        assert register(registration, token, "123456789AC").status_code == 201


def test_unknown_key_ids_fetch_the_providers_keys_at_most_once_per_interval(academie_provider):
    reference = parse_reference(default_reference_text())
    tokens = ProviderTokens(academie_provider.issuer, academie_provider.audience, ClaimsMap(), refresh_seconds=60)
    good = academie_provider.sign(academie_provider.token_claims(matrix_sub("principal", COLLEGE)))

    async def scenario() -> list[int]:
        fetches = []
        who = await tokens.read(good, reference)
        assert (who.role, who.uai) == ("principal", COLLEGE)
        fetches.append(tokens.fetches)
        for n in range(5):
            made_up = academie_provider.sign(academie_provider.token_claims("x"), key=new_key(f"invente-{n}"))
            with pytest.raises(InvalidToken):
                await tokens.read(made_up, reference)
        fetches.append(tokens.fetches)
        return fetches

    assert asyncio.run(scenario()) == [1, 1]


def test_a_key_the_provider_withdrew_is_no_longer_trusted_once_the_keys_are_old(academie_provider):
    reference = parse_reference(default_reference_text())
    tokens = ProviderTokens(academie_provider.issuer, academie_provider.audience, ClaimsMap(), max_age_seconds=60)
    old = academie_provider.sign(academie_provider.token_claims(matrix_sub("principal", COLLEGE)))
    now = time.time()

    async def read(at: float):
        return await tokens.read(old, reference, now=at)

    assert asyncio.run(read(now)).role == "principal"
    assert asyncio.run(read(now + 30)).role == "principal"  # cached, keys still young
    academie_provider.keys = [new_key("cle-apres-compromission"), *academie_provider.keys[1:]]  # the old RSA key out
    academie_provider.restart()  # and keeps these keys for the tests after this one

    with pytest.raises(InvalidToken):
        asyncio.run(read(now + 61))  # the keys are fetched again: the old key is gone, and its token with it
    assert tokens.fetches == 2
