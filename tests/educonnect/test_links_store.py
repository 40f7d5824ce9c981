"""The links' store (educonnect_links, registration's migration 0005) on SQLite and PostgreSQL: a link found only
for a student still in the view, one link per INE and per identity, a campaign's links apart, and a student's
links deleted by the view when it applies their erasure."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from services.registration.app import MIGRATIONS
from services.registration.educonnect import linked_student, save_link
from services.registration.views import StudentsView, educonnect_links, student_files
from shared.contracts.events import StudentForgotten
from shared.contracts.streams import LoggedEvent
from shared.domain.student_file import StudentFile
from shared.runtime.db import make_engine
from shared.runtime.migrations import upgrade

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))
from event_factories import make_event  # noqa: E402

INE, OTHER_INE = "123456789AB", "1234567890A"
COLLEGE = "0752536Z"
NOW = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
LEA, HUGO = "a" * 64, "b" * 64  # identities as kept: HMAC digests


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'registration.sqlite3'}", None
    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
    upgrade(MIGRATIONS, url, schema)
    engine = make_engine(url, schema)
    with engine.begin() as conn:
        conn.execute(insert(student_files), [
            {"campaign": campaign, "ine": ine, "college_uai": COLLEGE, "version": 1,
             "file": StudentFile(ine=ine, campaign=campaign).model_dump_json()}
            for campaign in ("2027", "2028") for ine in (INE, OTHER_INE)
        ])
    yield engine
    engine.dispose()


def _links(engine: Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(select(educonnect_links.c.campaign, educonnect_links.c.subject,
                                                      educonnect_links.c.ine))}


def test_a_link_leads_to_its_student_in_its_campaign_only(engine: Engine) -> None:
    assert linked_student(engine, "2027", LEA) is None
    save_link(engine, "2027", LEA, INE, NOW)
    assert linked_student(engine, "2027", LEA) == (INE, COLLEGE)
    assert linked_student(engine, "2028", LEA) is None and linked_student(engine, "2027", HUGO) is None


def test_one_link_per_ine_and_per_identity(engine: Engine) -> None:
    save_link(engine, "2027", LEA, INE, NOW)
    save_link(engine, "2027", HUGO, INE, NOW)  # the INE linked again, to another EduConnect account
    assert _links(engine) == {("2027", HUGO, INE)}
    save_link(engine, "2027", HUGO, OTHER_INE, NOW)  # the identity linked to another INE
    assert _links(engine) == {("2027", HUGO, OTHER_INE)}
    save_link(engine, "2028", HUGO, OTHER_INE, NOW)  # another campaign: a link of its own
    assert _links(engine) == {("2027", HUGO, OTHER_INE), ("2028", HUGO, OTHER_INE)}


def test_a_link_to_a_student_no_longer_in_the_view_leads_nowhere(engine: Engine) -> None:
    save_link(engine, "2027", LEA, INE, NOW)
    with engine.begin() as conn:
        conn.execute(student_files.delete().where(student_files.c.ine == INE))
    assert linked_student(engine, "2027", LEA) is None


def test_the_view_deletes_a_students_links_when_it_applies_their_erasure(engine: Engine) -> None:
    save_link(engine, "2027", LEA, INE, NOW)
    save_link(engine, "2027", HUGO, OTHER_INE, NOW)
    save_link(engine, "2028", LEA, INE, NOW)
    erasure = make_event(StudentForgotten(reason="Demande de la famille"), ine=INE, campaign="2027")
    with engine.begin() as conn:
        StudentsView().apply(conn, [LoggedEvent(erasure, "passpro:{t}:2027:scoring", "9-0", 9)])
    assert _links(engine) == {("2027", HUGO, OTHER_INE), ("2028", LEA, INE)}
