"""InterviewScheduled v1 (before slots, a kept fixture) is read right everywhere (SPEC §7: slot_id null for every
version-1 event): appended exactly as v1 wrote it, it folds into a scheduled interview at a free time, every
service's view reads it without a dead letter (and takes no slot's place), and a move to a slot decides on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from event_factories import COLLEGE, LYCEE, PRINCIPAL, RECTORAT, make_event, registered, slot_opened
from services.evaluation.app import MIGRATIONS as EVALUATION_MIGRATIONS
from services.evaluation.queries import lycee_interviews
from services.evaluation.views import InterviewsView, slot_bookings
from services.registration import domain
from services.registration.app import MIGRATIONS as REGISTRATION_MIGRATIONS
from services.registration.views import StudentsView
from services.scoring.app import MIGRATIONS as SCORING_MIGRATIONS
from services.scoring.views import BonusProjection
from shared.contracts.events import CampaignOpened, InterviewRescheduled, InterviewScheduled
from shared.contracts.streams import StreamKeys
from shared.domain.slots import fold_slot
from shared.domain.student_file import CampaignFile, fold
from shared.runtime.db import make_engine
from shared.runtime.log.client import EventLog
from shared.runtime.migrations import upgrade
from shared.runtime.projection.consumer import Consumer
from sqlalchemy import func, select

FIXTURE = Path(__file__).parents[1] / "fixtures" / "interview_scheduled_v1.json"
V1_FIELDS: dict[str, str] = json.loads(FIXTURE.read_text(encoding="utf-8"))["fields"]
INE = V1_FIELDS["student_ine"]
CAMPAIGN = V1_FIELDS["campaign"]  # the fixture's, as it was written (2027): a log written then, read now


def test_the_fixture_is_an_older_version_than_the_code():
    assert int(V1_FIELDS["schema_version"]) < InterviewScheduled.SCHEMA_VERSION
    assert "slot_id" not in json.loads(V1_FIELDS["payload"])


@pytest.fixture
async def log_with_a_v1_interview(redis_url: str, academie: str):
    redis = Redis.from_url(redis_url, decode_responses=True)
    log = EventLog(redis, StreamKeys(academie))
    assert (await log.append(make_event(CampaignOpened(), actor=RECTORAT, ine=None, campaign=CAMPAIGN), "rectorat", 0, "f")).status == "ok"
    assert (await log.append(make_event(registered(), actor=PRINCIPAL, ine=INE, campaign=CAMPAIGN), "registration", 0, "f")).status == "ok"
    keys = [log.keys.service(CAMPAIGN, "registration"), log.keys.student(CAMPAIGN, INE), log.keys.event_ids(CAMPAIGN)]
    args = ["1", V1_FIELDS["event_id"], "fixture"] + [x for kv in V1_FIELDS.items() for x in kv]
    assert (await log._append(keys=keys, args=args))[0] == "ok"
    yield redis, log
    await redis.aclose()


async def test_the_v1_interview_is_a_free_time_one_and_can_move_to_a_slot(log_with_a_v1_interview):
    _, log = log_with_a_v1_interview
    history = await log.read_student(CAMPAIGN, INE)
    assert history[-1].event.schema_version == 2 and history[-1].event.payload.slot_id is None
    file = fold(CAMPAIGN, INE, [(h.event, h.student_version) for h in history])
    [interview] = file.interviews.values()
    assert (interview.interview_id, interview.status, interview.slot_id) == ("itw-v1", "scheduled", None)
    slot = fold_slot("s1", [make_event(slot_opened("s1", 1), ine=None, campaign=CAMPAIGN)])
    moved = domain.decide(file, CampaignFile(campaign=CAMPAIGN, opened=True), interview.scheduled_at,
                          domain.RescheduleInterview(LYCEE, interview.formation_code, "s1", None, None), COLLEGE,
                          {"s1": slot})
    assert isinstance(moved, InterviewRescheduled) and (moved.interview_id, moved.slot_id) == ("itw-v1", "s1")


@pytest.mark.parametrize(("name", "migrations", "view"), [
    ("registration", REGISTRATION_MIGRATIONS, StudentsView),
    ("evaluation", EVALUATION_MIGRATIONS, InterviewsView),
    ("scoring", SCORING_MIGRATIONS, BonusProjection),
])
async def test_every_view_reads_the_v1_interview(log_with_a_v1_interview, tmp_path, name, migrations, view):
    redis, log = log_with_a_v1_interview
    url = f"sqlite:///{tmp_path / name}.sqlite3"
    upgrade(migrations, url, None)
    engine = make_engine(url)
    await Consumer(redis, engine, log.keys, view(), keystore=None).catch_up()
    assert await redis.xlen(log.keys.dead_letters) == 0
    if name == "evaluation":
        with engine.connect() as conn:
            [(row, file)] = lycee_interviews(conn, CAMPAIGN, LYCEE)
            assert (row["interview_id"], row["status"], file.interviews["itw-v1"].slot_id) == ("itw-v1", "scheduled", None)
            assert conn.execute(select(func.count()).select_from(slot_bookings)).scalar_one() == 0
    engine.dispose()
