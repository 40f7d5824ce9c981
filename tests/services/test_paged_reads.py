"""Reads that do what they show (issue 12, finding 5), on SQLite and PostgreSQL: the students' and the
interviews' lists page in SQL and parse only the page's files; the dashboard's progress chart counts the
weeks the projection keeps instead of parsing every stored file, and gives what the parsing gave."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select

from services.evaluation import queries as evaluation_queries
from services.evaluation.app import MIGRATIONS as EVALUATION_MIGRATIONS
from services.evaluation.views import InterviewsView
from services.registration import queries as registration_queries
from services.registration.app import MIGRATIONS as REGISTRATION_MIGRATIONS
from services.registration.handlers import progress as student_progress
from services.registration.views import StudentsView
from services.registration.views import student_progress as progress_rows
from services.scoring import queries as scoring_queries
from services.scoring.app import MIGRATIONS as SCORING_MIGRATIONS
from services.scoring.pages import MAX_WEEKS, progress
from services.scoring.views import BonusProjection, student_files, student_totals, voeux
from shared.contracts.events import (
    Actor,
    CampaignOpened,
    CollegeAvisGiven,
    Event,
    InterviewHeld,
    InterviewScheduled,
    LyceeAvisGiven,
    Payload,
    Referent,
    Report,
    StudentRegistered,
    StudentWithdrawn,
)
from shared.contracts.streams import LoggedEvent
from shared.domain.student_file import StudentFile, voeu_key
from shared.runtime.db import ensure_schema, make_engine
from shared.runtime.migrations import alembic_config, upgrade

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
NOBODYS = str(int(CAMPAIGN) + 3)  # a campaign with nothing in it
COLLEGES = ["0752536Z", "0751790N"]
VOEUX = [("0752845K", "2473121131"), ("0752845K", "2473121332"), ("0750788Z", "2472550731")]
START = datetime(2025, 10, 5, 21, 30, tzinfo=UTC)  # a Sunday evening: the first moments cross a Paris Monday
PARIS = ZoneInfo("Europe/Paris")
PRINCIPAL = Actor(user_id="principal", role="principal", uai=COLLEGES[0])
REFERENT = Referent(user_id="referent-dupont", name="Claire Dupont", email="claire.dupont@ac-paris.fr")
REPORT = Report(motivation="satisfaisante", chances_of_success="satisfaisante", advice="Visiter l'atelier.")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'view.sqlite3'}", None
    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
        ensure_schema(url, schema)
        yield url, schema


def view_engine(database: tuple[str, str | None], migrations: Path) -> Engine:
    url, schema = database
    upgrade(migrations, url, schema)
    return make_engine(url, schema)


# --- histories --------------------------------------------------------------------------------------------


def _event(payload: Payload, ine: str | None, at: datetime) -> Event:
    return Event(event_id=uuid4(), occurred_at=at, campaign=CAMPAIGN, student_ine=ine, actor=PRINCIPAL, payload=payload)


def histories(students: int, rng: random.Random, span_days: int = 500) -> list[LoggedEvent]:
    """Every student's events in the student's order (versions 1, 2, ...), at moments spread over
    `span_days`, some near midnight on a Sunday in Paris; students interleaved as two streams would."""
    logged = [LoggedEvent(_event(CampaignOpened(bonus_points=2500), None, START), "rectorat", "0-1", None)]
    per_student: list[list[LoggedEvent]] = []
    for n in range(students):
        ine = f"{n:09d}PG"
        college = rng.choice(COLLEGES)
        moment = START + timedelta(minutes=rng.randrange(span_days * 24 * 60))

        def later() -> datetime:
            nonlocal moment
            moment += timedelta(minutes=rng.choice([1, 30, 24 * 60, 7 * 24 * 60 - 5, rng.randrange(40 * 24 * 60)]))
            return moment

        payloads: list[tuple[Payload, datetime]] = [
            (StudentRegistered(college_uai=college, last_name=f"Nom{n}", first_name="Léa", class_name="3e B",
                               referent=REFERENT), moment)
        ]
        if rng.random() < 0.7:
            payloads.append((CollegeAvisGiven(college_uai=college, avis=rng.choice(["favorable", "reserve"]),
                                              comment="Motivée."), later()))
        for k, (lycee, formation) in enumerate(rng.sample(VOEUX, rng.randint(0, 3))):
            interview_id = f"itw-{n}-{k}"
            scheduled_at = later()
            payloads.append((InterviewScheduled(interview_id=interview_id, lycee_uai=lycee, formation_code=formation,
                                                scheduled_at=scheduled_at, mode="presentiel"), scheduled_at))
            if rng.random() < 0.7:
                payloads.append((InterviewHeld(interview_id=interview_id, lycee_uai=lycee, formation_code=formation,
                                               held_at=later(), mode="presentiel", college_avis_present=True,
                                               report=REPORT), moment))
                for _ in range(rng.choice([0, 1, 1, 2])):  # sometimes a second avis replaces the first
                    payloads.append((LyceeAvisGiven(interview_id=interview_id, lycee_uai=lycee, formation_code=formation,
                                                    avis=rng.choice(["favorable", "reserve"])), later()))
        if rng.random() < 0.1:
            payloads.append((StudentWithdrawn(reason="Déménagement"), later()))
        per_student.append([
            LoggedEvent(_event(p, ine, at), "s", f"{n}-{v}", v) for v, (p, at) in enumerate(payloads, start=1)
        ])
    while per_student:  # interleave, keeping each student's order
        chosen = rng.choice(per_student)
        logged.append(chosen.pop(0))
        if not chosen:
            per_student.remove(chosen)
    return logged


def project(engine: Engine, view, events: list[LoggedEvent], page: int = 97) -> None:
    for start in range(0, len(events), page):
        with engine.begin() as conn:
            view.apply(conn, events[start : start + page])


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How many stored files were parsed (StudentFile.model_validate_json, what every list read uses)."""
    counted: Counter = Counter()
    original = StudentFile.model_validate_json.__func__

    def counting(cls, *args, **kwargs):
        counted["files"] += 1
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(StudentFile, "model_validate_json", classmethod(counting))
    return counted


# --- the lists ------------------------------------------------------------------------------------------


def test_the_students_list_pages_in_sql_and_parses_only_the_page(database, parses):
    engine = view_engine(database, REGISTRATION_MIGRATIONS)
    project(engine, StudentsView(), histories(50, random.Random(3)))
    with engine.connect() as conn:
        for college in (COLLEGES[0], None):  # a collège, and the rectorat's every collège
            everyone = registration_queries.college_students(conn, CAMPAIGN, college)
            total = registration_queries.count_college_students(conn, CAMPAIGN, college)
            assert total == len(everyone) > 4 and [f.ine for f in everyone] == sorted(f.ine for f in everyone)
            if college:
                assert {f.college_uai for f in everyone} == {college}
            for offset in (0, 2, total - 1, total):
                parses.clear()
                page = registration_queries.college_students(conn, CAMPAIGN, college, 2, offset)
                assert [f.ine for f in page] == [f.ine for f in everyone[offset : offset + 2]]
                assert parses["files"] == len(page) <= 2  # not the 50 files
        assert registration_queries.count_college_students(conn, NOBODYS, None) == 0
    engine.dispose()


def test_the_interviews_list_pages_in_sql_and_parses_only_the_page(database, parses):
    engine = view_engine(database, EVALUATION_MIGRATIONS)
    project(engine, InterviewsView(), histories(50, random.Random(4)))
    with engine.connect() as conn:
        for lycee in (VOEUX[0][0], None):
            everyone = evaluation_queries.lycee_interviews(conn, CAMPAIGN, lycee)
            total = evaluation_queries.count_lycee_interviews(conn, CAMPAIGN, lycee)
            assert total == len(everyone) > 4
            order = [(r["scheduled_at"], r["formation_code"], r["ine"], r["interview_id"]) for r, _ in everyone]
            assert order == sorted(order)
            for offset in (0, 3, total - 1):
                parses.clear()
                page = evaluation_queries.lycee_interviews(conn, CAMPAIGN, lycee, 2, offset)
                assert [r["interview_id"] for r, _ in page] == [r["interview_id"] for r, _ in everyone[offset : offset + 2]]
                assert parses["files"] == len(page) <= 2
    engine.dispose()


def old_college_counts(students: list[dict]) -> dict[str, int]:
    """« Mes élèves » counters as the page computed them, from every student's progress (before 0003)."""
    active = [s for s in students if s["status"] == "active"]
    return {
        "active": len(active),
        # an avis can no longer be given once an interview is held (4e363ab): not to do
        "avis_to_give": sum(
            1 for s in active if s["college_avis"] is None and all(i["status"] != "held" for i in s["interviews"])
        ),
        "upcoming": sum(1 for s in active for i in s["interviews"] if i["status"] == "scheduled"),
        "with_bonus": sum(1 for s in students if s["total_bonus_points"]),
    }


def test_the_students_counters_are_counts_of_rows_equal_to_what_parsing_every_file_gave(database, parses):
    engine = view_engine(database, REGISTRATION_MIGRATIONS)
    events = histories(120, random.Random(5))
    project(engine, StudentsView(), events)
    with engine.connect() as conn:
        points = registration_queries.bonus_points(conn, CAMPAIGN)
        for college in COLLEGES:
            everyone = [student_progress(f, points) for f in registration_queries.college_students(conn, CAMPAIGN, college)]
            expected = old_college_counts(everyone)
            assert all(expected.values()), expected  # each counter counted something: the comparison means something
            parses.clear()
            assert registration_queries.college_counts(conn, CAMPAIGN, college) == expected
            assert parses["files"] == 0
        assert registration_queries.college_counts(conn, NOBODYS, COLLEGES[0]) == dict.fromkeys(expected, 0)
    # A campaign without points gives no bonus, whatever the avis (as the bonus rule computes it).
    project(engine, StudentsView(), [LoggedEvent(_event(CampaignOpened(bonus_points=0), None, START), "rectorat", "0-2", None)])
    with engine.connect() as conn:
        assert registration_queries.college_counts(conn, CAMPAIGN, COLLEGES[0])["with_bonus"] == 0
    engine.dispose()


def test_the_migration_backfills_the_progress_rows_from_the_stored_files(database):
    """Upgraded over a view projected before the progress rows were kept, the view holds what the projection writes."""
    engine = view_engine(database, REGISTRATION_MIGRATIONS)
    project(engine, StudentsView(), histories(80, random.Random(8)))

    def rows() -> list:
        with engine.connect() as conn:
            return conn.execute(select(progress_rows).order_by(progress_rows.c.campaign, progress_rows.c.ine)).all()

    projected = rows()
    assert len(projected) == 80 and any(r.favorable_voeux for r in projected) and any(r.withdrawn for r in projected)
    config = alembic_config(REGISTRATION_MIGRATIONS, *database)
    engine.dispose()
    command.downgrade(config, "0002")
    with engine.connect() as conn:
        assert "student_progress" not in inspect(conn).get_table_names()
    command.upgrade(config, "head")
    assert rows() == projected
    engine.dispose()


def test_the_interviews_filters_and_counters_are_sql_equal_to_filtering_every_interview(database, parses):
    engine = view_engine(database, EVALUATION_MIGRATIONS)
    project(engine, InterviewsView(), histories(80, random.Random(6)))
    lycee, formation = VOEUX[0]
    with engine.connect() as conn:
        everyone = [row for row, _ in evaluation_queries.lycee_interviews(conn, CAMPAIGN, lycee)]
        parses.clear()
        assert evaluation_queries.lycee_interview_counts(conn, CAMPAIGN, lycee) == Counter(r["status"] for r in everyone)
        assert parses["files"] == 0
        for wanted_formation, status in ((formation, None), (None, "held"), (formation, "scheduled")):
            expected = [
                r["interview_id"] for r in everyone
                if (not wanted_formation or r["formation_code"] == wanted_formation) and (not status or r["status"] == status)
            ]
            assert expected
            assert evaluation_queries.count_lycee_interviews(conn, CAMPAIGN, lycee, wanted_formation, status) == len(expected)
            parses.clear()
            page = evaluation_queries.lycee_interviews(conn, CAMPAIGN, lycee, 2, 1, wanted_formation, status)
            assert [r["interview_id"] for r, _ in page] == expected[1:3] and parses["files"] == len(page)
    engine.dispose()


# --- the dashboard's progress chart -----------------------------------------------------------------------


def parsed_progress(files_json: list[str], lycee: str | None, formation: str | None) -> tuple[list[str], list]:
    """The chart as it was computed before: every stored file's JSON parsed on each view (the reference)."""

    def monday(moment: datetime) -> datetime:
        local = moment.astimezone(PARIS)
        return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)

    weekly: dict[str, Counter] = {"avis": Counter(), "held": Counter(), "favorable": Counter()}
    for raw in files_json:
        file = json.loads(raw)
        if file.get("withdrawn"):
            continue
        if file.get("college_avis_at"):
            weekly["avis"][monday(datetime.fromisoformat(file["college_avis_at"]))] += 1
        for interview in (file.get("interviews") or {}).values():
            if interview.get("status") != "held" or not interview.get("held_at"):
                continue
            if (lycee and interview["lycee_uai"] != lycee) or (formation and interview["formation_code"] != formation):
                continue
            weekly["held"][monday(datetime.fromisoformat(interview["held_at"]))] += 1
            history = (file.get("lycee_avis") or {}).get(voeu_key(interview["lycee_uai"], interview["formation_code"]))
            latest = max(history, key=lambda a: a["version"]) if history else None
            if latest and latest["avis"] == "favorable":
                weekly["favorable"][monday(datetime.fromisoformat(latest["occurred_at"]))] += 1
    every_week = [w for counts in weekly.values() for w in counts]
    if not every_week:
        return [], []
    weeks = [max(min(every_week), monday(max(every_week) - timedelta(weeks=MAX_WEEKS - 1)))]
    while weeks[-1] < max(every_week):
        weeks.append(monday(weeks[-1] + timedelta(days=7, hours=12)))

    def cumulative(counts: Counter) -> list[int]:
        before = sum(n for w, n in counts.items() if w < weeks[0])
        return list(accumulate((counts.get(w, 0) for w in weeks), initial=before))[1:]

    return [w.strftime("%d/%m") for w in weeks], [
        ("Avis du collège saisis", cumulative(weekly["avis"]), ""),
        ("Entretiens tenus", cumulative(weekly["held"]), "warn"),
        ("Avis favorables du lycée", cumulative(weekly["favorable"]), "good"),
    ]


FILTERS = [
    (None, None, None),
    (COLLEGES[0], None, None),
    (None, VOEUX[0][0], None),
    (None, VOEUX[0][0], VOEUX[0][1]),
    (COLLEGES[1], None, VOEUX[2][1]),
]


def charts(engine: Engine) -> dict:
    with engine.connect() as conn:
        return {f: progress(scoring_queries.weekly_milestones(conn, CAMPAIGN, *f)) for f in FILTERS}


def reference_charts(engine: Engine) -> dict:
    found = {}
    with engine.connect() as conn:
        for college, lycee, formation in FILTERS:
            query = select(student_files.c.file).where(student_files.c.campaign == CAMPAIGN)
            if college:
                query = query.where(student_files.c.college_uai == college)
            found[(college, lycee, formation)] = parsed_progress(list(conn.execute(query).scalars()), lycee, formation)
    return found


@pytest.mark.parametrize("span_days", [500, 60])  # beyond MAX_WEEKS (earlier weeks summed), and within
def test_the_progress_chart_from_the_kept_weeks_is_what_parsing_every_file_gave(database, parses, span_days):
    engine = view_engine(database, SCORING_MIGRATIONS)
    project(engine, BonusProjection(), histories(120, random.Random(span_days), span_days))
    parses.clear()
    got = charts(engine)
    assert parses["files"] == 0
    expected = reference_charts(engine)
    assert got == expected
    labels, series = got[(None, None, None)]
    assert len(labels) == (MAX_WEEKS if span_days > 400 else len(labels)) and all(values[-1] > 0 for _, values, _ in series)
    with engine.connect() as conn:
        assert progress(scoring_queries.weekly_milestones(conn, NOBODYS, None, None, None)) == ([], [])
    engine.dispose()


def test_the_migration_backfills_the_weeks_from_the_stored_files(database):
    """Upgraded over a view projected before the weeks were kept, the view holds what the projection writes."""
    engine = view_engine(database, SCORING_MIGRATIONS)
    project(engine, BonusProjection(), histories(80, random.Random(7)))

    def weeks() -> tuple[list, list]:
        with engine.connect() as conn:
            return (
                conn.execute(select(student_totals.c.ine, student_totals.c.college_avis_week).order_by(student_totals.c.ine)).all(),
                conn.execute(
                    select(voeux.c.ine, voeux.c.lycee_uai, voeux.c.formation_code, voeux.c.held_week, voeux.c.favorable_week)
                    .order_by(voeux.c.ine, voeux.c.lycee_uai, voeux.c.formation_code)
                ).all(),
            )

    projected = weeks()
    assert any(w for _, w in projected[0]) and any(r.held_week for r in projected[1]) and any(r.favorable_week for r in projected[1])
    config = alembic_config(SCORING_MIGRATIONS, *database)
    engine.dispose()
    command.downgrade(config, "0003")
    with engine.connect() as conn:
        assert "held_week" not in {c["name"] for c in inspect(conn).get_columns("voeux")}
    command.upgrade(config, "head")
    assert weeks() == projected
    engine.dispose()


# --- over HTTP ------------------------------------------------------------------------------------------


def test_a_list_longer_than_its_limit_answers_the_asked_page_and_the_total(passpro, registration, evaluation, parses):
    college, lycee, formation = COLLEGES[0], *VOEUX[0]
    principal = passpro.auth("principal", college)
    ines = [f"{n:09d}HT" for n in range(7)]
    for n, ine in enumerate(ines):
        body = {"student_ine": ine, "college_uai": college, "last_name": f"Nom{n}", "first_name": "Léa",
                "class_name": "3e B", "referent": REFERENT.model_dump()}
        assert registration.post("/api/students", json=body, headers=principal).status_code == 201
        when = (datetime.now(UTC) + timedelta(days=7 - n)).isoformat()  # the last registered is interviewed first
        written = registration.post(f"/api/students/{ine}/interviews", headers=principal, json={
            "lycee_uai": lycee, "formation_code": formation, "scheduled_at": when, "mode": "presentiel"})
        assert written.status_code == 201, written.text
    position = written.json()["positions"]["service"]

    def listed(client, path: str, headers: dict, offset: int) -> dict:
        parses.clear()
        answer = client.get(path, params={"limit": 3, "offset": offset, "min_position": position}, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    # Both views caught up first: their consumers' folds parse files too, and must not be counted.
    listed(registration, "/api/students", principal, 0)
    listed(evaluation, "/api/interviews", passpro.auth("lycee_staff", lycee), 0)
    for offset, shown in ((0, ines[:3]), (3, ines[3:6]), (6, ines[6:]), (9, [])):
        page = listed(registration, "/api/students", principal, offset)
        assert (page["total"], page["limit"], page["offset"]) == (7, 3, offset)
        assert [s["ine"] for s in page["items"]] == shown
        assert parses["files"] == len(shown)  # the page's files only, not the seven
        interviews = listed(evaluation, "/api/interviews", passpro.auth("lycee_staff", lycee), offset)
        assert (interviews["total"], interviews["limit"], interviews["offset"]) == (7, 3, offset)
        assert [i["ine"] for i in interviews["items"]] == list(reversed(ines))[offset : offset + 3]
        assert parses["files"] == len(shown)
    assert listed(registration, "/api/students", passpro.auth("principal", COLLEGES[1]), 0)["total"] == 0


@pytest.mark.parametrize(
    ("migrations", "before"), [(REGISTRATION_MIGRATIONS, "0001"), (EVALUATION_MIGRATIONS, "0001"), (SCORING_MIGRATIONS, "0003")]
)
def test_the_new_revisions_go_down_and_up_again(database, migrations, before):
    url, schema = database
    config = alembic_config(migrations, url, schema)
    upgrade(migrations, url, schema)
    command.downgrade(config, before)
    command.upgrade(config, "head")
