"""The rights matrix's rows of the letter and the checklist (tests/services/matrix.py: WRITES, WRITE_RIGHTS,
STUDENT_RIGHTS), for the student themselves: their own file, and never another student's."""

from __future__ import annotations

import pytest

from matrix import (  # noqa: F401  (world: the module's fixture)
    STUDENT,
    STUDENT_RIGHTS,
    WRITES,
    World,
    refusal_problems,
    world,
)


@pytest.mark.parametrize("name", sorted(STUDENT_RIGHTS))
def test_the_student_of_the_file_writes_as_the_matrix_says(world: World, name: str):
    write, expected = WRITES[name], STUDENT_RIGHTS[name]
    ine = world.prepare(write.situation)
    before = world.stream_lengths(ine)
    response = world.clients[write.service].post(
        write.url(ine, world.interviews[ine]), json=write.body(ine), headers=world.headers(STUDENT, ine))
    answer = response.json()
    assert (response.status_code, answer.get("error")) == (expected.status, expected.error), response.text
    after = world.stream_lengths(ine)
    if expected.status == 201:
        assert answer["event"]["actor"] == {"user_id": f"eleve-{ine}", "role": "eleve", "uai": STUDENT.uai}
        assert answer["event"]["student_ine"] == ine
        assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {
            world.passpro.service_stream("registration"): 1, world.passpro.student_stream(ine): 1}
    else:
        assert refusal_problems(response.status_code, answer) == [] and after == before


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [("letter", 409, "no_interview_for_voeu"), ("my-preparation", 404, "interview_not_found"),
     ("preparation", 403, "role_forbidden")],
)
def test_another_student_never_writes_in_this_students_file(world: World, name: str, status: int, error: str):
    """Another student of the same collège, registered without an interview: the path's INE and interview are
    not theirs, and what they write goes to their own file or nowhere."""
    write = WRITES[name]
    ine, other = world.prepare(write.situation), world.prepare("registered")
    before, others_before = world.stream_lengths(ine), world.stream_lengths(other)
    response = world.clients[write.service].post(
        write.url(ine, world.interviews[ine]), json=write.body(ine), headers=world.headers(STUDENT, other))
    assert (response.status_code, response.json().get("error")) == (status, error), response.text
    assert world.stream_lengths(ine) == before and world.stream_lengths(other) == others_before
