"""EduConnect says which school the student is in (FrEduCtEleveUAI): when it is not the collège that registered
the student in Passpro, no session opens — the first time (after a right access code: no link kept, nothing
waiting) and once linked (the link stays; the access code still opens the space) — with a French page."""

from __future__ import annotations

import dataclasses

from conftest import MOVED_STUDENT, OTHER_SCHOOL, STUDENT
from educonnect_world import EduConnectWorld
from pages_world import text_of

from services.registration.educonnect import same_school

INE = "123456789EC"
OTHER_SCHOOL_PAGE = "ÉduConnect te rattache à un autre établissement que le collège qui t'a inscrit dans Passpro"


def test_the_school_must_be_the_students_collège_and_be_named():
    assert same_school("0752536Z", "0752536Z") and same_school(" 0752536z ", "0752536Z")
    assert not same_school(OTHER_SCHOOL, "0752536Z")
    assert not same_school(None, "0752536Z") and not same_school("", "0752536Z")


def test_first_time_a_student_of_another_school_is_refused_even_with_the_right_code(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)  # at Collège Voltaire
        code = world.issue_code(INE)
        fields = world.through_idp(visitor, MOVED_STUDENT.login)
        answer = world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        assert answer.status_code == 303 and answer.headers["location"] == "/eleve/educonnect"
        visitor.get("/eleve/educonnect")
        refused = visitor.post("/eleve/educonnect", {"ine": INE, "code": code}, follow=False)
        assert refused.status_code == 403, refused.text
        assert OTHER_SCHOOL_PAGE in text_of(refused.text)
        assert "passpro_registration=" not in refused.headers.get("set-cookie", "")
        assert world.session_of(visitor) is None
        assert world.links() == [] and world.pending_identities() == []


def test_once_linked_a_student_whose_school_changed_in_educonnect_is_refused(world: EduConnectWorld) -> None:
    with world.registration() as visitor:
        world.register(visitor, INE)
        code = world.issue_code(INE)
        fields = world.through_idp(visitor, STUDENT.login)
        world.post_acs(visitor, fields["SAMLResponse"], fields["RelayState"])
        visitor.get("/eleve/educonnect")
        assert visitor.post("/eleve/educonnect", {"ine": INE, "code": code}, follow=False).status_code == 303
        [link] = world.links()

    world.idp.users[STUDENT.login] = dataclasses.replace(STUDENT, uai=OTHER_SCHOOL)
    try:
        with world.registration() as later:
            fields = world.through_idp(later, STUDENT.login)
            refused = world.post_acs(later, fields["SAMLResponse"], fields["RelayState"])
            assert refused.status_code == 403, refused.text
            assert OTHER_SCHOOL_PAGE in text_of(refused.text)
            assert "passpro_registration=" not in refused.headers.get("set-cookie", "")
            assert world.session_of(later) is None
            assert world.links() == [link] and world.pending_identities() == []
    finally:
        world.idp.users[STUDENT.login] = STUDENT
