"""Hostile sign-ins with EduConnect (issue 14 part 5): each forged, replayed or misdirected answer of the IdP is
refused with a French page, no session, nothing stored (no identity waiting for its code, no link)."""

from __future__ import annotations

import pytest

from conftest import OTHER_STUDENT, PARENT, STUDENT
from educonnect_world import EduConnectWorld, forget_student
from pages_world import Visitor, text_of
from saml_idp import decode, encode
from services.registration.access_codes import LOCK_SECONDS
from services.registration.educonnect import LOGIN_STARTS

INE = "123456789EC"
REFUSED = "ÉduConnect n'a pas pu confirmer ton identité. Recommence la connexion depuis le début."


def assert_refused(world: EduConnectWorld, visitor: Visitor, answer, status: int = 401, message: str = REFUSED) -> None:
    assert answer.status_code == status, answer.text
    assert message in text_of(answer.text)
    assert "Recommencer avec ÉduConnect" in text_of(answer.text)
    assert "passpro_registration=" not in answer.headers.get("set-cookie", "")
    assert world.session_of(visitor) is None
    assert world.links() == [] and world.pending_identities() == []


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"sign_assertion": False}, id="unsigned assertion"),
        pytest.param({"audience": "https://another-service.example/saml/metadata"}, id="another audience"),
        pytest.param({"lifetime_minutes": -10}, id="expired"),
        pytest.param({"destination": "https://another-service.example/saml/acs"}, id="another destination"),
        pytest.param({"weak_signature": True}, id="SHA-1 signature"),
        pytest.param({"in_response_to": None}, id="unsolicited"),
    ],
)
def test_an_assertion_the_idp_should_not_have_sent_is_refused(world: EduConnectWorld, options: dict) -> None:
    with world.registration() as visitor:
        pending = world.start(visitor)
        answer = world.post_acs(visitor, world.idp.response(pending, STUDENT.login, **options), pending.relay_state)
        assert_refused(world, visitor, answer)


def test_an_unsigned_assertion_is_refused_even_in_a_signed_response_and_encrypted(world: EduConnectWorld,
                                                                               saml_keys) -> None:
    with world.registration() as visitor:
        pending = world.start(visitor)
        unsigned = world.idp.response(
            pending, STUDENT.login, sign_assertion=False, sign_response=True, encrypt_for=saml_keys["sp"][1],
        )
        assert "EncryptedAssertion" in decode(unsigned) and STUDENT.educonnect_id not in decode(unsigned)
        assert_refused(world, visitor, world.post_acs(visitor, unsigned, pending.relay_state))


def test_an_assertion_signed_by_a_key_not_in_the_idps_metadata_is_refused(world: EduConnectWorld, saml_keys) -> None:
    with world.registration() as visitor:
        pending = world.start(visitor)
        forged = world.idp.response(pending, STUDENT.login, forged_key=saml_keys["forged"])
        assert_refused(world, visitor, world.post_acs(visitor, forged, pending.relay_state))


def test_a_tampered_assertion_fails_its_signature(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        pending = world.start(visitor)
        xml = decode(world.idp.response(pending, OTHER_STUDENT.login))
        assert xml.count(OTHER_STUDENT.educonnect_id) == 1
        tampered = encode(xml.replace(OTHER_STUDENT.educonnect_id, STUDENT.educonnect_id))  # pose as Léa
        assert_refused(world, visitor, world.post_acs(visitor, tampered, pending.relay_state))


def test_an_answer_to_another_request_is_refused(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        pending = world.start(visitor)
        answer = world.post_acs(
            visitor, world.idp.response(pending, STUDENT.login, in_response_to="id-not-asked-by-passpro"),
            pending.relay_state,
        )
        assert_refused(world, visitor, answer)


def test_a_replayed_answer_is_refused(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        fields = world.through_idp(visitor, STUDENT.login)
        first = world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        assert first.status_code == 303 and len(world.pending_identities()) == 1
    with world.registration() as attacker:  # the same answer, posted again from another browser
        again = world.post_acs(attacker, fields["SAMLResponse"], fields["RelayState"])
        assert again.status_code == 401 and REFUSED in text_of(again.text)
        assert world.session_of(attacker) is None and world.links() == []
        assert len(world.pending_identities()) == 1  # only the first one's


def test_a_replayed_answer_of_a_linked_student_opens_no_session(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)
        fields = world.through_idp(visitor, STUDENT.login)
        world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        visitor.get("/eleve/educonnect")
        visitor.post("/eleve/educonnect", {"ine": INE, "code": code}, follow=False)
        fields = world.through_idp(visitor, STUDENT.login)  # signed in straight away the second time
        assert world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"]).status_code == 303
    with world.registration() as attacker:
        again = world.post_acs(attacker, fields["SAMLResponse"], fields["RelayState"])
        assert again.status_code == 401 and world.session_of(attacker) is None


def test_the_replay_guard_refuses_an_assertion_used_once(world: EduConnectWorld) -> None:
    """Defence in depth behind the single use of each request: an assertion's id is taken once."""
    with world.registration() as visitor:
        pending = world.start(visitor)
        saml_response = world.idp.response(pending, STUDENT.login)
        assertion_id = decode(saml_response).split("<ns1:Assertion ", 1)[1].split('ID="', 1)[1].split('"', 1)[0]
        world.redis.set(f"passpro:{{{world.academie}}}:educonnect:assertion:"
                        + __import__("hashlib").sha256(assertion_id.encode()).hexdigest(), "1", ex=60)
        assert_refused(world, visitor, world.post_acs(visitor, saml_response, pending.relay_state))


def test_a_parent_is_not_let_in(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        fields = world.through_idp(visitor, PARENT.login)
        answer = world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        assert_refused(world, visitor, answer, 403, "ce compte ÉduConnect n'est pas un compte d'élève")


@pytest.mark.parametrize("saml_response", ["", "pas du base64 !", encode("<html>rien</html>"), encode("<not xml")])
def test_garbage_is_refused(world: EduConnectWorld, saml_response: str) -> None:
    with world.registration() as visitor:
        world.start(visitor)
        assert_refused(world, visitor, world.post_acs(visitor, saml_response, "x"))


def test_a_wrong_relay_state_is_refused(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        pending = world.start(visitor)
        answer = world.post_acs(visitor, world.idp.response(pending, STUDENT.login), "another-state")
        assert_refused(world, visitor, answer)


# --- the starts -----------------------------------------------------------------------------------------------


def _outstanding_requests(world: EduConnectWorld) -> int:
    return sum(1 for _ in world.redis.scan_iter(match=f"passpro:{{{world.academie}}}:educonnect:request:*"))


def test_sign_ins_started_in_a_row_from_one_address_are_refused_429_with_nothing_stored(
    world: EduConnectWorld,
) -> None:
    with world.registration() as visitor:
        for _ in range(LOGIN_STARTS):
            assert visitor.client.get("/saml/login", follow_redirects=False).status_code == 303
        assert _outstanding_requests(world) == LOGIN_STARTS
        for _ in range(3):
            refused = visitor.client.get("/saml/login", follow_redirects=False)
            assert refused.status_code == 429, refused.text
            assert 0 < int(refused.headers["retry-after"]) <= LOCK_SECONDS
            assert "Trop de connexions avec ÉduConnect" in text_of(refused.text)
            assert "Attends 15 minutes" in text_of(refused.text)
        assert _outstanding_requests(world) == LOGIN_STARTS  # no AuthnRequest kept for a refused start
        assert world.links() == [] and world.pending_identities() == [] and world.session_of(visitor) is None


def test_a_verified_answer_clears_the_count_of_its_address(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        for _ in range(LOGIN_STARTS - 1):
            assert visitor.client.get("/saml/login", follow_redirects=False).status_code == 303
        _verified_not_linked(world, visitor)  # the LOGIN_STARTS-th start, answered: a student got through
        for _ in range(LOGIN_STARTS):
            assert visitor.client.get("/saml/login", follow_redirects=False).status_code == 303
        assert visitor.client.get("/saml/login", follow_redirects=False).status_code == 429


# --- the link -------------------------------------------------------------------------------------------------


def _verified_not_linked(world: EduConnectWorld, visitor: Visitor) -> None:
    fields = world.through_idp(visitor, STUDENT.login)
    assert world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"]).status_code == 303
    assert visitor.get("/eleve/educonnect").status_code == 200


def test_a_wrong_code_is_a_401_and_the_sixth_try_a_429_even_with_the_right_code(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)
        _verified_not_linked(world, visitor)
        for _ in range(5):
            wrong = visitor.post("/eleve/educonnect", {"ine": INE, "code": "AAAA-BBBB-CCCC"})
            assert wrong.status_code == 401
            assert "INE ou code d'accès incorrect" in text_of(wrong.text)
        locked = visitor.post("/eleve/educonnect", {"ine": INE, "code": code})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        assert "Trop d'essais avec un code faux" in text_of(locked.text)
        assert world.links() == [] and world.session_of(visitor) is None


def test_the_link_page_needs_a_verified_identity_and_its_csrf_token(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)
        page = visitor.get("/eleve/educonnect")
        assert page.status_code == 401 and "a expiré" in text_of(page.text)
        visitor.get("/connexion")  # a page with a form: a valid CSRF token, but no identity verified
        assert visitor.post("/eleve/educonnect", {"ine": INE, "code": code}).status_code == 401
        _verified_not_linked(world, visitor)
        assert visitor.post("/eleve/educonnect", {"ine": INE, "code": code}, csrf=False).status_code == 403
        assert world.links() == [] and world.session_of(visitor) is None


def test_forget_erases_the_link_and_the_next_sign_in_asks_for_a_code_again(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)
        _verified_not_linked(world, visitor)
        visitor.post("/eleve/educonnect", {"ine": INE, "code": code}, follow=False)
        assert [link[2] for link in world.links()] == [INE]

        forget_student(world, visitor, INE)
        assert world.links() == []
    with world.registration() as later:
        fields = world.through_idp(later, STUDENT.login)
        answer = world.post_acs(later, fields["SAMLResponse"], fields["RelayState"])
        assert answer.headers["location"] == "/eleve/educonnect" and world.session_of(later) is None
