"""Staff sign in with the académie's provider (SPEC §8) on the services' pages, and every hostile case of
issue 14 refused: a French page (401 or 403), no session cookie, nothing stored."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from academie_provider import AcademieProvider
from sign_in_world import SESSION_COOKIES, ProviderPasspro, provider_callback, sign_in, start_sign_in

TEXT_401 = "La connexion par votre compte académique n'a pas abouti"


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


def text_of(page: str) -> str:
    import html
    import re

    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S))
    return " ".join(html.unescape(without_tags).split())


def assert_refused(answer, status: int, words: str, client: TestClient, service: str = "registration") -> None:
    """A French page with `status`, and no session: neither in the answer nor in the browser."""
    assert answer.status_code == status, answer.text
    assert words in text_of(answer.text)
    assert 'lang="fr"' in answer.text
    assert SESSION_COOKIES[service] not in answer.cookies
    assert SESSION_COOKIES[service] not in client.cookies
    assert client.get("/", follow_redirects=False).status_code in (302, 303)  # still sent to the sign-in page


# --- signing in --------------------------------------------------------------------------------------------


def test_a_principal_signs_in_with_the_academic_account_and_sees_the_college_space(passpro, registration, academie_provider):
    before = passpro.snapshot()

    answer = sign_in(registration, academie_provider, "anne.principale", next_path="/eleves/nouveau")

    assert (answer.status_code, answer.headers["location"]) == (303, "/eleves/nouveau")
    assert SESSION_COOKIES["registration"] in answer.cookies
    home = registration.get("/")
    assert home.status_code == 200
    assert "Principal(e)" in text_of(home.text) and "Collège Voltaire" in text_of(home.text)
    assert passpro.snapshot() == before  # signing in writes nothing to the log


def test_the_sign_in_page_offers_the_academic_account_and_the_token_form_only_outside_production(passpro, academie_provider):
    with passpro.client("registration") as client:
        page = text_of(client.get("/connexion").text)
        assert "Se connecter avec mon compte académique" in page and "Jeton de connexion" in page
    passpro.changes = {"environment": "production"}
    with passpro.client("registration") as client:
        page = client.get("/connexion")
        assert "Se connecter avec mon compte académique" in text_of(page.text)
        assert "Jeton de connexion" not in text_of(page.text)
        posted = client.post("/connexion", data={"jeton": passpro.token("principal", "0752536Z")})
        assert posted.status_code == 404 and passpro.snapshot() is not None
        assert SESSION_COOKIES["registration"] not in client.cookies


def test_the_proviseur_the_lycee_staff_and_the_rectorat_get_their_own_roles(passpro, academie_provider):
    for service, sub, label in (
        ("evaluation", "paul.proviseur", "Proviseur(e)"),
        ("evaluation", "louis.lycee", "Équipe du lycée"),
        ("scoring", "rita.rectorat", "Rectorat"),
        ("registration", "claire.referente", "Référent(e)"),
    ):
        with passpro.client(service) as client:
            answer = sign_in(client, academie_provider, sub)
            assert answer.status_code == 303, (sub, answer.text)
            assert label in text_of(client.get("/").text), sub


def test_an_id_token_signed_by_the_providers_new_key_is_accepted_after_a_rotation(passpro, academie_provider):
    with passpro.client("registration") as first:
        assert sign_in(first, academie_provider, "anne.principale").status_code == 303
        academie_provider.rotate_keys()  # the same app: its JWKS, fetched before, lacks the new key
        with passpro.client("registration") as second:  # another browser, on a new app: fresh discovery
            assert sign_in(second, academie_provider, "anne.principale").status_code == 303
        first.cookies.clear()
        assert sign_in(first, academie_provider, "anne.principale").status_code == 303


def test_sign_out_ends_the_providers_session_too(registration, academie_provider):
    sign_in(registration, academie_provider, "anne.principale")
    registration.get("/")
    csrf = registration.get("/").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]

    answer = registration.post("/deconnexion", data={"csrf": csrf}, follow_redirects=False)

    assert answer.status_code == 200 and "Vous êtes déconnecté(e) de Passpro" in text_of(answer.text)
    refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', answer.text)
    target = urlparse(html.unescape(refresh.group(1)))
    query = parse_qs(target.query)
    assert f"{target.scheme}://{target.netloc}" == academie_provider.issuer and target.path == "/session/end"
    assert query["post_logout_redirect_uri"] == ["http://testserver/connexion?fait=deconnexion"]
    assert query["client_id"] == [academie_provider.client_id] and query["id_token_hint"]
    assert SESSION_COOKIES["registration"] not in registration.cookies


# --- who gets no session -----------------------------------------------------------------------------------


def test_a_person_the_claims_give_no_role_gets_a_french_403_and_no_session(passpro, registration, academie_provider):
    before = passpro.snapshot()
    answer = sign_in(registration, academie_provider, "tom.enseignant")
    assert_refused(answer, 403, "Votre compte académique ne vous donne aucun rôle dans Passpro", registration)
    assert passpro.snapshot() == before


def csrf_of(page: str) -> str:
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_a_head_of_two_establishments_chooses_one_before_any_session(passpro, registration, academie_provider):
    before = passpro.snapshot()
    answer = sign_in(registration, academie_provider, "dora.deuxcolleges", next_path="/eleves/nouveau")

    assert answer.status_code == 200
    page = text_of(answer.text)
    assert "Pour quel établissement agissez-vous ?" in page
    assert "Collège Voltaire — Principal(e)" in page and "Collège Pierre Alviset — Principal(e)" in page
    assert SESSION_COOKIES["registration"] not in registration.cookies  # no session before the choice

    chosen = registration.post("/auth/choix", data={"csrf": csrf_of(answer.text), "uai": "0751790N"}, follow_redirects=False)

    assert (chosen.status_code, chosen.headers["location"]) == (303, "/eleves/nouveau")
    assert "Collège Pierre Alviset" in text_of(registration.get("/").text)
    assert passpro.snapshot() == before


@pytest.mark.parametrize("uai", ["0752845K", "0750512Z", "", "0751790N "])
def test_an_establishment_the_provider_did_not_offer_cannot_be_chosen(passpro, registration, academie_provider, uai):
    answer = sign_in(registration, academie_provider, "dora.deuxcolleges")
    refused = registration.post("/auth/choix", data={"csrf": csrf_of(answer.text), "uai": uai}, follow_redirects=False)
    assert_refused(refused, 403, "ne fait pas partie de ceux que votre compte académique désigne", registration)


def test_a_choice_without_the_offer_signed_by_this_service_is_refused(passpro, registration, academie_provider):
    import jwt

    page = registration.get("/connexion")
    forged = jwt.encode(
        {"aud": "passpro-oidc-choice", "exp": 4102444800, "next": "/", "id_token": "x",
         "choices": [["dora.deuxcolleges", "principal", "0751790N"]]}, "not-the-service-secret-" * 2, algorithm="HS256",
    )
    registration.cookies.set("passpro_registration_choix", forged)
    answer = registration.post("/auth/choix", data={"csrf": csrf_of(page.text), "uai": "0751790N"}, follow_redirects=False)
    assert_refused(answer, 401, TEXT_401, registration)
    registration.cookies.delete("passpro_registration_choix")
    answer = registration.post("/auth/choix", data={"csrf": csrf_of(page.text), "uai": "0751790N"}, follow_redirects=False)
    assert_refused(answer, 401, TEXT_401, registration)


def test_a_head_of_two_lycees_at_the_colleges_space_has_nothing_to_choose(passpro, academie_provider):
    academie_provider.users["lea.deuxlycees"] = {
        "FrEduFonctAdm": "DIR", "FrEduRne": ["0752845K$UAJ", "0750788Z$UAJ"],
    }
    academie_provider.restart()
    with passpro.client("registration") as registration:
        answer = sign_in(registration, academie_provider, "lea.deuxlycees")
        assert_refused(answer, 403, "désigne plusieurs établissements participant à Passpro", registration)


def test_a_principal_at_the_lycees_space_gets_a_french_403_and_no_session(passpro, academie_provider):
    with passpro.client("evaluation") as evaluation:
        answer = sign_in(evaluation, academie_provider, "anne.principale")
        assert_refused(answer, 403, "qui n'a pas accès à l'espace lycée", evaluation, "evaluation")


# --- hostile ID tokens: the provider's answer rewritten before it reaches Passpro ---------------------------


@pytest.mark.parametrize("mode", [
    "alg_none", "foreign_key", "wrong_audience", "wrong_audience_with_azp", "wrong_issuer", "expired", "wrong_nonce",
])
def test_a_forged_or_wrong_id_token_is_refused_with_a_french_401_and_no_session(passpro, registration, academie_provider, mode):
    before = passpro.snapshot()
    callback = provider_callback(academie_provider, start_sign_in(registration), "anne.principale")
    academie_provider.tamper(mode)

    answer = registration.get(callback, follow_redirects=False)

    assert_refused(answer, 401, TEXT_401, registration)
    assert passpro.snapshot() == before


def test_a_replayed_code_is_refused(passpro, registration, academie_provider):
    login = start_sign_in(registration)
    flow = registration.cookies.get("passpro_registration_oidc")
    callback = provider_callback(academie_provider, login, "anne.principale")
    assert registration.get(callback, follow_redirects=False).status_code == 303
    before = passpro.snapshot()

    with passpro.client("registration") as attacker:  # another browser, with the first one's flow cookie
        attacker.cookies.set("passpro_registration_oidc", flow)
        answer = attacker.get(callback, follow_redirects=False)
        assert_refused(answer, 401, TEXT_401, attacker)
    assert passpro.snapshot() == before


def test_a_callback_in_a_browser_that_did_not_start_the_sign_in_is_refused(passpro, registration, academie_provider):
    callback = provider_callback(academie_provider, start_sign_in(registration), "anne.principale")
    with passpro.client("registration") as other:  # no flow cookie: the state matches nothing
        assert_refused(other.get(callback, follow_redirects=False), 401, TEXT_401, other)


def test_a_callback_without_code_or_with_the_providers_error_is_refused(registration):
    start_sign_in(registration)
    assert_refused(registration.get("/auth/callback", follow_redirects=False), 401, TEXT_401, registration)
    answer = registration.get("/auth/callback?error=access_denied&state=x", follow_redirects=False)
    assert_refused(answer, 401, TEXT_401, registration)


@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
    "http:evil.example", "javascript:alert(1)", "/connexion",
])
def test_next_is_only_ever_a_local_path(registration, academie_provider, target):
    answer = sign_in(registration, academie_provider, "anne.principale", next_path=target)
    assert (answer.status_code, answer.headers["location"]) == (303, "/")


def test_next_keeps_a_local_path(registration, academie_provider):
    answer = sign_in(registration, academie_provider, "anne.principale", next_path="/?page=2")
    assert answer.headers["location"] == "/?page=2"


# --- configuration -----------------------------------------------------------------------------------------


def test_without_a_provider_the_academic_routes_do_not_exist(passpro):
    passpro.provider, saved = None, passpro.provider
    try:
        with passpro.client("registration") as client:
            assert client.get("/auth/login", follow_redirects=False).status_code == 404
            assert client.get("/auth/callback?code=x&state=y", follow_redirects=False).status_code == 404
            assert "compte académique" not in text_of(client.get("/connexion").text)
    finally:
        passpro.provider = saved


def test_a_provider_out_of_reach_is_a_french_503(passpro):
    passpro.changes = {"oidc_issuer": "http://127.0.0.1:9"}  # nothing listens on the discard port
    with passpro.client("registration") as client:
        answer = client.get("/auth/login", follow_redirects=False)
        assert answer.status_code == 503 and "ne répond pas" in text_of(answer.text)
