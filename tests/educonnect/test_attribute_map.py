"""The attribute map (PASSPRO_SAML_ATTRIBUTE_MAP) and the settings EduConnect needs, checked before the service
starts; a map naming other attributes or other student types is what the sign-in follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import PARENT, STUDENT
from educonnect_world import EduConnectWorld
from services.registration.educonnect import DEFAULT_ATTRIBUTE_MAP, AttributeMap, ServiceProvider
from services.registration.settings import RegistrationSettings


def _map(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "educonnect-map.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_without_a_file_the_map_is_educonnects() -> None:
    default = AttributeMap.load(None)
    assert default.identity == "urn:oid:1.3.6.1.4.1.20326.10.999.1.57" and default.student_types == ("eleve2d",)


@pytest.mark.parametrize(
    "content",
    [
        {"user_typ": "urn:oid:1"},  # an unknown key
        {"identity": ""},
        {"uai": 42},
        {"student_types": []},
        {"student_types": "eleve2d"},
        ["identity"],
    ],
)
def test_a_wrong_map_is_refused_before_the_service_starts(tmp_path: Path, content: object) -> None:
    with pytest.raises(ValueError, match="PASSPRO_SAML_ATTRIBUTE_MAP"):
        AttributeMap.load(_map(tmp_path, content))


def test_educonnect_needs_the_sps_address_key_and_certificate(tmp_path: Path, saml_keys) -> None:
    key, cert = saml_keys["sp"]
    complete = {"saml_idp_metadata": "https://educonnect.example/metadata.xml",
                "saml_sp_base_url": "https://college.passpro.example", "saml_sp_key": key, "saml_sp_cert": cert}
    sp = ServiceProvider(RegistrationSettings(**complete))
    assert sp.entity_id == "https://college.passpro.example/saml/metadata"
    for changed in ({"saml_sp_base_url": None}, {"saml_sp_key": None}, {"saml_sp_cert": tmp_path / "absent.crt"}):
        with pytest.raises(ValueError, match="PASSPRO_SAML_SP_BASE_URL"):
            ServiceProvider(RegistrationSettings(**(complete | changed)))
    assert not ServiceProvider(RegistrationSettings()).configured  # nothing set: no EduConnect, no complaint


def test_the_metadata_may_be_a_file_and_the_map_may_let_parents_in(world: EduConnectWorld, tmp_path: Path) -> None:
    metadata = tmp_path / "educonnect-idp.xml"
    metadata.write_text(world.idp.metadata(), encoding="utf-8")
    world.idp_metadata = str(metadata)
    world.attribute_map = _map(tmp_path, {"student_types": ["eleve2d", "resp2d"]})
    with world.registration() as visitor:
        fields = world.through_idp(visitor, PARENT.login)
        answer = world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        assert answer.status_code == 303 and answer.headers["location"] == "/eleve/educonnect"


def test_a_map_may_take_a_persistent_nameid_as_the_identity(world: EduConnectWorld, tmp_path: Path) -> None:
    world.attribute_map = _map(tmp_path, {"identity": "NameID"})
    with world.registration() as visitor:
        pending = world.start(visitor)
        transient = world.post_acs(visitor, world.idp.response(pending, STUDENT.login), pending.relay_state)
        assert transient.status_code == 401  # a transient NameID identifies nobody for good
        assert world.pending_identities() == []
        pending = world.start(visitor)
        answer = world.post_acs(
            visitor, world.idp.response(pending, STUDENT.login, persistent_name_id=True), pending.relay_state,
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/eleve/educonnect"


def test_the_default_map_is_what_the_docs_show_and_the_deployments_file() -> None:
    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "educonnect.md").read_text(encoding="utf-8")
    shown = json.loads(docs.split("```json", 1)[1].split("```", 1)[0])
    assert shown == DEFAULT_ATTRIBUTE_MAP
    deployed = root / "deploy" / "educonnect-attribute-map.json"
    assert json.loads(deployed.read_text(encoding="utf-8")) == DEFAULT_ATTRIBUTE_MAP
    assert AttributeMap.load(deployed) == AttributeMap.load(None)


def test_the_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, saml_keys) -> None:
    key, cert = saml_keys["sp"]
    for name, value in {
        "PASSPRO_SAML_IDP_METADATA": "https://educonnect.example/idp/metadata.xml",
        "PASSPRO_SAML_SP_BASE_URL": "https://college.passpro.example/",
        "PASSPRO_SAML_SP_ENTITY_ID": "urn:passpro:paris:college",
        "PASSPRO_SAML_SP_KEY": str(key),
        "PASSPRO_SAML_SP_CERT": str(cert),
    }.items():
        monkeypatch.setenv(name, value)
    sp = ServiceProvider(RegistrationSettings())
    assert sp.configured and sp.entity_id == "urn:passpro:paris:college"
    assert sp.acs_url == "https://college.passpro.example/saml/acs"
    assert (sp.settings.saml_sp_key, sp.settings.saml_sp_cert) == (key, cert)
