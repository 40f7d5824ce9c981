"""The summary report from two grouped scans gives exactly what one query per figure gave, on both databases."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from services.scoring import queries
from services.scoring.app import MIGRATIONS
from services.scoring.views import student_totals, voeux
from shared.runtime.db import ensure_schema, make_engine
from shared.runtime.migrations import upgrade

LYCEES = [("0750001A", "2400001"), ("0750001A", "2400002"), ("0750002B", "2400001"), ("0750003C", "2400003")]
COLLEGES = ["0751001D", "0751002E", None]
AVIS = [None, "reserve", "assez_favorable", "favorable"]


def one_query_per_figure(conn: Connection, campaign: str) -> dict:
    """The report as it was computed before (eight queries), kept here as the reference."""

    def counts(*columns, table=voeux, where=()) -> list[dict]:
        query = (
            select(*columns, func.count().label("count"))
            .where(table.c.campaign == campaign, *where)
            .group_by(*columns)
            .order_by(*columns)
        )
        return [dict(r._mapping) for r in conn.execute(query)]

    def count(table, *where) -> int:
        return conn.execute(select(func.count()).select_from(table).where(table.c.campaign == campaign, *where)).scalar_one()

    return {
        "campaign": campaign,
        "students": count(student_totals),
        "college_avis": counts(student_totals.c.college_avis, table=student_totals),
        "college_avis_by_college": counts(student_totals.c.college_uai, student_totals.c.college_avis, table=student_totals),
        "lycee_avis": counts(voeux.c.lycee_avis),
        "lycee_avis_by_lycee_and_formation": counts(voeux.c.lycee_uai, voeux.c.formation_code, voeux.c.lycee_avis),
        "interviews_held": count(voeux, voeux.c.interview_held),
        "missing_college_avis": count(voeux, voeux.c.interview_held, voeux.c.college_avis_present.is_(False)),
        "bonuses_granted": count(voeux, voeux.c.bonus_points > 0),
    }


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'scoring.sqlite3'}", None
    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
        ensure_schema(url, schema)
    upgrade(MIGRATIONS, url, schema)
    engine = make_engine(url, schema)
    yield engine
    engine.dispose()


def fill(conn: Connection, campaign: str, students: int, rng: random.Random) -> None:
    totals, rows = [], []
    for n in range(students):
        ine = f"{n:09d}SQ"
        college = rng.choice(COLLEGES)
        totals.append({"campaign": campaign, "ine": ine, "college_uai": college, "college_avis": rng.choice(AVIS),
                       "withdrawn": rng.random() < 0.1, "total_bonus_points": 0})
        for lycee, formation in rng.sample(LYCEES, rng.randint(0, 3)):
            held = rng.random() < 0.7
            rows.append({"campaign": campaign, "ine": ine, "lycee_uai": lycee, "formation_code": formation,
                         "college_uai": college, "lycee_avis": rng.choice([None, "favorable", "reserve"]) if held else None,
                         "bonus_points": rng.choice([0, 0, 2500]), "interview_held": held,
                         "college_avis_present": rng.choice([None, True, False])})
    conn.execute(student_totals.insert(), totals)
    if rows:
        conn.execute(voeux.insert(), rows)


def test_the_summary_is_the_same_as_with_one_query_per_figure(engine):
    with engine.begin() as conn:
        fill(conn, "2027", 300, random.Random(1))
        fill(conn, "2026", 50, random.Random(2))  # another campaign, never counted
    with engine.connect() as conn:
        for campaign in ("2027", "2026", "2030"):  # 2030: nothing at all
            assert queries.summary(conn, campaign) == one_query_per_figure(conn, campaign)
        assert queries.summary(conn, "2027")["students"] == 300
        assert queries.summary(conn, "2030")["lycee_avis"] == []
