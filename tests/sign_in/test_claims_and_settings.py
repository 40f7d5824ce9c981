"""The claims mapping (shared/runtime/claims_map.py) and what production requires of sign-in (SPEC §8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from academie_provider import PEOPLE, ministry_claims, rne
from shared.contracts.reference import default_reference_text, parse_reference
from shared.runtime.claims_map import ClaimsMap, Mapped, Unmapped, load_claims_map, map_claims
from shared.runtime.settings import ServiceSettings

REFERENCE = parse_reference(default_reference_text())
COLLEGE, OTHER_COLLEGE, LYCEE = "0752536Z", "0751790N", "0752845K"


def mapped(claims: dict, rules: ClaimsMap | None = None):
    return map_claims(rules or ClaimsMap(), claims, REFERENCE)


@pytest.mark.parametrize(("role", "uai"), [
    ("principal", COLLEGE), ("referent", COLLEGE), ("lycee_staff", LYCEE), ("proviseur", LYCEE), ("rectorat", None),
])
def test_the_ministry_style_claims_give_each_role_and_establishment(role, uai):
    assert mapped({"sub": "x", **ministry_claims(role, uai)}) == Mapped("x", role, uai)


def test_the_head_of_an_establishment_is_principal_of_a_college_and_proviseur_of_a_lycee():
    head = {"sub": "x", "FrEduFonctAdm": ["DIR"]}
    assert mapped({**head, "FrEduRne": [rne(COLLEGE)]}) == Mapped("x", "principal", COLLEGE)
    assert mapped({**head, "FrEduRne": [rne(LYCEE)]}) == Mapped("x", "proviseur", LYCEE)


def test_the_establishment_a_head_is_responsible_for_wins_over_where_they_also_work():
    claims = {"sub": "x", "FrEduFonctAdm": "DIR", "FrEduRne": [rne(COLLEGE), rne(OTHER_COLLEGE)], "FrEduRneResp": [rne(COLLEGE)]}
    assert mapped(claims) == Mapped("x", "principal", COLLEGE)


@pytest.mark.parametrize(("claims", "reason"), [
    (PEOPLE["tom.enseignant"], "no_role"),
    (PEOPLE["dora.deuxcolleges"], "several_establishments"),
    ({"groups": ["passpro-referents"], "FrEduRne": [rne(LYCEE)]}, "no_establishment"),  # a référent of a lycée
    ({"groups": ["passpro-referents"], "FrEduRne": ["9999999Z$UAJ"]}, "no_establishment"),  # not Passpro's
    ({"groups": ["passpro-referents"]}, "no_establishment"),
    ({"FrEduFonctAdm": "DIR", "FrEduRne": "not a list nor UAI"}, "no_establishment"),
])
def test_claims_that_give_no_single_role_and_establishment_give_none(claims, reason):
    found = mapped({"sub": "x", **claims})
    assert isinstance(found, Unmapped) and found.reason == reason
    assert "Passpro" in found.message


@pytest.mark.parametrize("sub", [None, "", "   ", "x" * 129, 42])
def test_no_usable_user_id_gives_no_role(sub):
    claims = {**ministry_claims("principal", COLLEGE), **({} if sub is None else {"sub": sub})}
    assert mapped(claims).reason == "no_user_id"


def test_a_mapping_file_replaces_the_default(tmp_path: Path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({
        "user_id": "uid",
        "establishment": {"claims": ["rne"], "separator": "|"},
        "roles": [{"role": "referent", "claim": "fonction", "value": "CPE"}],
    }))
    rules = load_claims_map(str(path))
    assert mapped({"uid": "cpe.1", "fonction": "CPE", "rne": [f"{COLLEGE}|x"]}, rules) == Mapped("cpe.1", "referent", COLLEGE)
    assert mapped({"sub": "x", **ministry_claims("principal", COLLEGE)}, rules).reason == "no_user_id"


@pytest.mark.parametrize("content", ["not json", '{"roles": []}', '{"roles": [{"role": "eleve", "claim": "a", "value": "b"}]}', '{"other": 1}'])
def test_a_bad_mapping_file_stops_the_start_up_with_the_reason(tmp_path: Path, content: str):
    path = tmp_path / "map.json"
    path.write_text(content)
    with pytest.raises(SystemExit, match="PASSPRO_OIDC_CLAIMS_MAP"):
        load_claims_map(str(path))


def test_the_deploy_example_is_the_default():
    example = Path(__file__).resolve().parents[2] / "deploy" / "oidc-claims-map.json"
    assert load_claims_map(str(example)) == ClaimsMap()


# --- production ------------------------------------------------------------------------------------------

PROVIDER = {"oidc_issuer": "https://idp.example", "oidc_client_id": "passpro", "oidc_client_secret": "s" * 32}


def test_the_token_page_exists_in_development_and_never_by_default_in_production():
    assert ServiceSettings().token_page and ServiceSettings(demo=True).token_page
    assert not ServiceSettings(environment="production").token_page
    ServiceSettings(environment="production", **PROVIDER).require_sign_in_setup()  # starts
    ServiceSettings().require_sign_in_setup()  # development: no provider needed (passpro up keeps the demo users)


@pytest.mark.parametrize(("changes", "named"), [
    ({"token_signin": True}, "PASSPRO_TOKEN_SIGNIN"),
    ({"demo": True}, "PASSPRO_DEMO"),
    ({"oidc_issuer": ""}, "PASSPRO_OIDC_ISSUER"),
    ({"oidc_client_secret": ""}, "PASSPRO_OIDC_CLIENT_SECRET"),
])
def test_production_refuses_to_start_with_the_token_page_demo_users_or_no_provider(changes, named):
    with pytest.raises(SystemExit, match=named):
        ServiceSettings(environment="production", **{**PROVIDER, **changes}).require_sign_in_setup()


def test_a_bad_mapping_file_stops_the_start_up_in_any_environment(tmp_path: Path):
    path = tmp_path / "map.json"
    path.write_text("{")
    for environment in ("development", "production"):
        with pytest.raises(SystemExit, match="PASSPRO_OIDC_CLAIMS_MAP"):
            ServiceSettings(environment=environment, oidc_claims_map=str(path), **PROVIDER).require_sign_in_setup()


def test_passpro_serve_in_production_with_the_token_page_does_not_start(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPRO_")} | {
        "PASSPRO_ENVIRONMENT": "production", "PASSPRO_TOKEN_SIGNIN": "1", "PASSPRO_JWT_SECRET": "j" * 40,
        "PASSPRO_MASTER_KEY": "dGhlLWUyZS10ZXN0cy1tYXN0ZXIta2V5LTMyLWJ5dGU=", "PASSPRO_DATA_DIR": str(tmp_path),
        **{f"PASSPRO_{k.upper()}": v for k, v in PROVIDER.items()},
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", "registration", "--port", "18501"], env=env,
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode != 0 and "PASSPRO_TOKEN_SIGNIN" in done.stderr


def test_the_trusted_proxies_are_loopback_by_default_and_addresses_or_networks_as_set():
    assert ServiceSettings().forwarded_allow_ips == ["127.0.0.1", "::1"]
    assert ServiceSettings(trusted_proxies="").forwarded_allow_ips == []  # none: the peer's address, always
    assert ServiceSettings(trusted_proxies=" 172.30.101.10, 10.1.0.0/16,fd00::1 ").forwarded_allow_ips == [
        "172.30.101.10", "10.1.0.0/16", "fd00::1"]


@pytest.mark.parametrize(("value", "said"), [
    ("*", "anyone"),  # a client would choose its own address and escape the sign-in limits
    ("10.0.0.5,*", "anyone"),
    ("nginx", "neither an IP address"),  # uvicorn would take it as a name no peer has: trusting no one, silently
    ("10.1.2.3/16", "neither an IP address"),  # host bits set: a typo uvicorn would ignore the same way
])
def test_trusted_proxies_that_are_everyone_or_no_address_stop_the_settings(value, said):
    with pytest.raises(ValueError, match=said):
        ServiceSettings(trusted_proxies=value)


def test_passpro_serve_refuses_uvicorns_own_forwarded_allow_ips(tmp_path: Path):
    """It would be ignored (PASSPRO_TRUSTED_PROXIES is read): an operator who set it learns so at the start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPRO_")} | {
        "FORWARDED_ALLOW_IPS": "*", "PASSPRO_JWT_SECRET": "j" * 40, "PASSPRO_DATA_DIR": str(tmp_path),
        "PASSPRO_MASTER_KEY": "dGhlLWUyZS10ZXN0cy1tYXN0ZXIta2V5LTMyLWJ5dGU=",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", "registration", "--port", "9701"], env=env,
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode != 0 and "PASSPRO_TRUSTED_PROXIES" in done.stderr
