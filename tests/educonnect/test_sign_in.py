"""A student signs in with EduConnect through a real SAML IdP: the first time they type their access code once
and their EduConnect identity is linked to their INE; the second time they get straight in (SPEC §8)."""

from __future__ import annotations

from conftest import OTHER_STUDENT, STUDENT, free_port
from educonnect_world import EduConnectWorld
from pages_world import CAMPAIGN, COLLEGE, text_of
from saml_idp import decode

INE = "123456789EC"


def test_sp_metadata_names_the_acs_the_key_and_the_attributes_requested(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        answer = visitor.client.get("/saml/metadata")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/samlmetadata+xml")
    text = answer.text
    assert 'entityID="http://testserver/saml/metadata"' in text
    assert 'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="http://testserver/saml/acs"' in text
    assert 'WantAssertionsSigned="true"' in text and 'AuthnRequestsSigned="true"' in text
    assert text.count("X509Certificate>") == 4  # signing and encryption keys
    assert "sha1" not in text and "md5" not in text  # only the algorithms Passpro accepts are advertised
    assert "rsa-sha256" in text
    assert '<ns0:ServiceName xml:lang="fr">Passpro — académie de Paris</ns0:ServiceName>' in text
    for oid in ("1.7", "1.57", "1.64", "1.67", "1.72"):  # type, identifier, INE hash, birth date, UAI
        assert f'RequestedAttribute Name="urn:oid:1.3.6.1.4.1.20326.10.999.{oid}"' in text


def test_first_time_the_access_code_links_the_identity_then_straight_in(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)

        fields = world.through_idp(visitor, STUDENT.login)
        answer = world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        assert answer.status_code == 303 and answer.headers["location"] == "/eleve/educonnect"
        assert world.session_of(visitor) is None and world.links() == []

        page = visitor.get("/eleve/educonnect")
        assert page.status_code == 200
        assert "Première connexion avec ÉduConnect" in text_of(page.text)
        linked = visitor.post("/eleve/educonnect", {"ine": INE.lower(), "code": code.replace("-", " ")}, follow=False)
        assert linked.status_code == 303 and linked.headers["location"] == "/eleve"
        who = world.session_of(visitor)
        assert (who.role, who.ine, who.uai) == ("eleve", INE, COLLEGE)
        [(campaign, subject, ine)] = world.links()
        assert (campaign, ine) == (CAMPAIGN, INE)
        assert STUDENT.educonnect_id not in subject and len(subject) == 64  # an HMAC, never the identifier
        assert world.pending_identities() == []

    with world.registration() as second_visit:  # another day, another browser: no code asked
        fields = world.through_idp(second_visit, STUDENT.login)
        answer = world.post_acs(second_visit, fields["SAMLResponse"], fields["RelayState"])
        assert answer.status_code == 303 and answer.headers["location"] == "/eleve"
        who = world.session_of(second_visit)
        assert (who.role, who.ine, who.uai) == ("eleve", INE, COLLEGE)
        assert len(world.links()) == 1


def test_another_student_is_not_let_in_by_someone_elses_link(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)
        fields = world.through_idp(visitor, STUDENT.login)
        world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        visitor.get("/eleve/educonnect")
        assert visitor.post("/eleve/educonnect", {"ine": INE, "code": code}, follow=False).status_code == 303

    with world.registration() as other:
        fields = world.through_idp(other, OTHER_STUDENT.login)
        answer = world.post_acs(other, fields["SAMLResponse"], fields["RelayState"])
        assert answer.status_code == 303 and answer.headers["location"] == "/eleve/educonnect"
        assert world.session_of(other) is None


def test_after_signing_in_the_student_goes_to_a_student_page_only(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)
        for asked, landing in [("/formations", "/formations"), ("https://evil.example/", "/eleve"),
                               ("//evil.example", "/eleve"), ("/eleves/123456789EC", "/eleve")]:
            answer = visitor.client.get(f"/saml/login?next={asked}", follow_redirects=False)
            _, pending = world.idp.receive_url(answer.headers["location"])
            done = world.post_acs(visitor, world.idp.response(pending, STUDENT.login), pending.relay_state)
            if done.headers["location"] == "/eleve/educonnect":
                visitor.get("/eleve/educonnect")
                done = visitor.post("/eleve/educonnect", {"ine": INE, "code": code}, follow=False)
            assert done.status_code == 303 and done.headers["location"] == landing, asked


def test_without_educonnect_configured_its_pages_say_so_in_french(world: EduConnectWorld) -> None:
    world.idp_off = True
    with world.client("registration", demo=False) as client:
        for path in ("/saml/metadata", "/saml/login", "/eleve/educonnect"):
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 404, path
            assert "La connexion avec ÉduConnect n'est pas ouverte ici" in text_of(answer.text)
        assert client.post("/saml/acs", data={"SAMLResponse": "x"}).status_code == 404
        assert "Avec ÉduConnect" not in text_of(client.get("/eleve/connexion").text)


def test_the_campaigns_purge_takes_the_links(world: EduConnectWorld) -> None:
    from sqlalchemy import create_engine

    from services.registration.purge import purge_campaign

    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)
        fields = world.through_idp(visitor, STUDENT.login)
        world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        visitor.get("/eleve/educonnect")
        visitor.post("/eleve/educonnect", {"ine": INE, "code": code}, follow=False)
    assert len(world.links()) == 1
    engine = create_engine(f"sqlite:///{world.data_dir / 'registration.sqlite3'}")
    with engine.begin() as conn:
        deleted = purge_campaign(conn, CAMPAIGN, f"passpro:{{{world.academie}}}:{CAMPAIGN}:")
    engine.dispose()
    assert deleted["educonnect_links"] == 1 and world.links() == []


def test_while_educonnect_cannot_be_read_the_student_is_told_in_french(world: EduConnectWorld) -> None:

    world.idp_metadata = f"http://127.0.0.1:{free_port()}/metadata"  # nobody listens there
    with world.registration() as visitor:  # Passpro's own metadata is still served
        answer = visitor.client.get("/saml/login", follow_redirects=False)
        assert answer.status_code == 503
        assert "ÉduConnect ne répond pas pour l'instant" in text_of(answer.text)
        assert world.session_of(visitor) is None


def test_an_encrypted_assertion_is_read_with_passpros_key(world: EduConnectWorld, saml_keys) -> None:
    """Shibboleth (EduConnect) encrypts assertions for the certificate in the SP's metadata by default."""
    with world.registration() as visitor:
        pending = world.start(visitor)
        encrypted = world.idp.response(pending, STUDENT.login, encrypt_for=saml_keys["sp"][1], sign_response=True)
        assert "EncryptedAssertion" in decode(encrypted) and STUDENT.educonnect_id not in decode(encrypted)
        answer = world.post_acs(visitor, encrypted, pending.relay_state)
        assert answer.status_code == 303 and answer.headers["location"] == "/eleve/educonnect"
        assert len(world.pending_identities()) == 1


def test_the_authn_request_is_signed_with_sha256_names_passpro_and_imposes_no_nameid(world: EduConnectWorld) -> None:
    import base64
    import zlib
    from urllib.parse import parse_qs, urlparse

    with world.registration() as visitor:
        location = visitor.client.get("/saml/login", follow_redirects=False).headers["location"]
    query = parse_qs(urlparse(location).query)
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"] and query["Signature"]
    request = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
    assert 'ProviderName="Passpro — académie de Paris"' in request
    assert 'AssertionConsumerServiceURL="http://testserver/saml/acs"' in request
    assert "NameIDPolicy" not in request  # EduConnect chooses the NameID: the identity is FrEduCtId
