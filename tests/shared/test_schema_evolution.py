"""An event written by an older schema_version (a kept fixture) is read right by every consumer.

`CollegeAvisGiven` v1 stored the avis as its French label ("assez favorable");
v2 stores a code. The v1 entry below is appended exactly as v1 wrote it, then
read by the decisions and by the three services' views.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.evaluation.app import MIGRATIONS as EVALUATION_MIGRATIONS
from services.evaluation.queries import lycee_interviews
from services.evaluation.views import InterviewsView
from services.registration.app import MIGRATIONS as REGISTRATION_MIGRATIONS
from services.registration.queries import college_students
from services.registration.views import StudentsView
from services.scoring import queries
from services.scoring.app import MIGRATIONS as SCORING_MIGRATIONS
from services.scoring.views import BonusProjection
from shared.contracts.events import CampaignOpened, CollegeAvisGiven, event_from_fields
from shared.contracts.streams import StreamKeys
from shared.domain.student_file import fold
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import make_engine
from shared.runtime.log.client import EventLog
from shared.runtime.migrations import upgrade

from event_factories import (
    COLLEGE,
    LYCEE,
    PRINCIPAL,
    LYCEE_STAFF,
    PROVISEUR,
    RECTORAT,
    held,
    lycee_avis,
    make_event,
    registered,
    scheduled,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "college_avis_given_v1.json"
V1_FIELDS: dict[str, str] = json.loads(FIXTURE.read_text(encoding="utf-8"))["fields"]
INE = V1_FIELDS["student_ine"]
CAMPAIGN = V1_FIELDS["campaign"]  # the fixture's, as it was written (2027): a log written then, read now


def test_the_fixture_is_an_older_version_than_the_code():
    assert int(V1_FIELDS["schema_version"]) < CollegeAvisGiven.SCHEMA_VERSION
    assert json.loads(V1_FIELDS["payload"])["avis"] == "assez favorable"


def test_the_v1_label_is_upcast_to_the_current_code():
    event = event_from_fields(V1_FIELDS)
    assert event.schema_version == CollegeAvisGiven.SCHEMA_VERSION
    assert event.payload.avis == "assez_favorable"


def test_a_v1_entry_that_already_holds_a_code_keeps_it():
    fields = V1_FIELDS | {"payload": json.dumps({**json.loads(V1_FIELDS["payload"]), "avis": "reserve"})}
    assert event_from_fields(fields).payload.avis == "reserve"


async def _append_raw(log: EventLog, service: str, version: int, fields: dict[str, str]) -> None:
    """Append entry fields as an older producer did, through the same script."""
    keys = log.keys
    args = [str(version), fields["event_id"], "fixture"] + [x for kv in fields.items() for x in kv]
    reply = await log._append(
        keys=[keys.service(CAMPAIGN, service), keys.student(CAMPAIGN, INE), keys.event_ids(CAMPAIGN)], args=args
    )
    assert reply[0] in (b"ok", "ok"), reply


@pytest.fixture
async def log_with_a_v1_avis(redis_url: str, academie: str):
    redis = Redis.from_url(redis_url, decode_responses=True)
    log = EventLog(redis, StreamKeys(academie))
    opened = make_event(CampaignOpened(bonus_points=2500), actor=RECTORAT, ine=None, campaign=CAMPAIGN)
    assert (await log.append(opened, "rectorat", 0, "f")).status == "ok"
    history = [
        ("registration", make_event(registered(), actor=PRINCIPAL, ine=INE, campaign=CAMPAIGN)),
        ("registration", None),  # the v1 collège avis, raw
        ("registration", make_event(scheduled(), actor=PRINCIPAL, ine=INE, campaign=CAMPAIGN)),
        ("evaluation", make_event(held(college_avis_present=True), actor=LYCEE_STAFF, ine=INE, campaign=CAMPAIGN)),
        ("evaluation", make_event(lycee_avis("favorable"), actor=PROVISEUR, ine=INE, campaign=CAMPAIGN)),
    ]
    for version, (service, event) in enumerate(history):
        if event is None:
            await _append_raw(log, service, version, V1_FIELDS)
        else:
            assert (await log.append(event, service, version, "f")).status == "ok"
    yield redis, log
    await redis.aclose()


async def test_a_decision_reads_the_v1_avis_from_the_students_stream(log_with_a_v1_avis):
    _, log = log_with_a_v1_avis
    history = await log.read_student(CAMPAIGN, INE)
    file = fold(CAMPAIGN, INE, [(h.event, h.student_version) for h in history])
    assert file.college_avis == "assez_favorable"
    assert file.college_comment.startswith("Élève assidu")


async def _caught_up(redis, log, tmp_path: Path, name: str, migrations, view):
    url = f"sqlite:///{tmp_path / name}.sqlite3"
    upgrade(migrations, url, None)
    engine = make_engine(url)
    consumer = Consumer(redis, engine, log.keys, view, keystore=None)
    await consumer.catch_up()
    return engine, consumer


async def test_every_view_reads_the_v1_avis(log_with_a_v1_avis, tmp_path):
    redis, log = log_with_a_v1_avis

    engine, consumer = await _caught_up(redis, log, tmp_path, "registration", REGISTRATION_MIGRATIONS, StudentsView())
    with engine.connect() as conn:
        [student] = college_students(conn, CAMPAIGN, COLLEGE)
    assert student.college_avis == "assez_favorable"
    assert await redis.xlen(log.keys.dead_letters) == 0

    engine, _ = await _caught_up(redis, log, tmp_path, "evaluation", EVALUATION_MIGRATIONS, InterviewsView())
    with engine.connect() as conn:
        [(row, file)] = lycee_interviews(conn, CAMPAIGN, LYCEE)
    assert file.college_avis == "assez_favorable"

    engine, _ = await _caught_up(redis, log, tmp_path, "scoring", SCORING_MIGRATIONS, BonusProjection())
    with engine.connect() as conn:
        summary = queries.summary(conn, CAMPAIGN)
        bonus = queries.student_bonus(conn, CAMPAIGN, INE)
    assert {"college_avis": "assez_favorable", "count": 1} in summary["college_avis"]
    assert bonus["total_bonus_points"] == 2500
    assert await redis.xlen(log.keys.dead_letters) == 0
