"""The peer: the same projection workload on the `eventsourcing` library, PostgreSQL persistence.

The bench's students (the same generator, seed and size as our log) are stored
as `Student` aggregates of an eventsourcing `Application` whose recorder is
PostgreSQL; then a `Projection` with a PostgreSQL tracking recorder, run by the
library's `ProjectionRunner`, catches up from the start and keeps one row per
vœu and one total per student with the bonus rule of SPEC §3.2 (the campaign's
points when the latest lycée avis of the vœu is favorable, 0 for a withdrawn
student). As the library intends, each event is applied in its own transaction
together with its tracking record. `tests/bench` runs both projections over a
small log and finds the same students, bonuses and points, so the two are known
to compute the same thing.

It is a bench peer, not part of Passpro: the library's conventions (topics
derived from Python paths, one transaction per event) are kept as they are.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from psycopg.sql import SQL, Identifier

from bench.workload import BONUS_POINTS, STUDENTS_PER_PIPELINE, Places, student_history

CAMPAIGN_ID = uuid5(NAMESPACE_URL, "passpro-bench-campaign")


class Campaign(Aggregate):
    class Opened(Aggregate.Created):
        campaign: str
        bonus_points: int

    def __init__(self, campaign: str, bonus_points: int) -> None:
        self.campaign = campaign
        self.bonus_points = bonus_points


class Student(Aggregate):
    """One student of one campaign; the events carry the same payloads as our log's entries."""

    class Registered(Aggregate.Created):
        ine: str
        payload: dict

    class ReferentReassigned(Aggregate.Event):
        payload: dict

    class CollegeAvisGiven(Aggregate.Event):
        payload: dict

    class InterviewScheduled(Aggregate.Event):
        payload: dict

    class InterviewCancelled(Aggregate.Event):
        payload: dict

    class InterviewHeld(Aggregate.Event):
        payload: dict

    class LyceeAvisGiven(Aggregate.Event):
        payload: dict

    class StudentWithdrawn(Aggregate.Event):
        payload: dict

    class StudentReinstated(Aggregate.Event):
        payload: dict

    def __init__(self, ine: str, payload: dict) -> None:
        self.ine = ine


class PassproPeerApplication(Application):
    name = "PassproPeer"


class BonusRecorder(PostgresTrackingRecorder):
    """The materialised view: vœux and totals, each change committed with its tracking record."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements += [
            SQL("CREATE TABLE IF NOT EXISTS {0}.peer_campaigns (id uuid PRIMARY KEY, bonus_points int NOT NULL)").format(schema),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.peer_students (id uuid PRIMARY KEY, ine text NOT NULL, "
                "college_uai text, college_avis text, withdrawn boolean NOT NULL DEFAULT false, "
                "total_bonus_points int NOT NULL DEFAULT 0)"
            ).format(schema),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.peer_voeux (student_id uuid NOT NULL, lycee_uai text NOT NULL, "
                "formation_code text NOT NULL, lycee_avis text, bonus_points int NOT NULL DEFAULT 0, "
                "interview_held boolean NOT NULL DEFAULT false, college_avis_present boolean, "
                "PRIMARY KEY (student_id, lycee_uai, formation_code))"
            ).format(schema),
        ]
        self.schema = schema

    def _change(self, tracking: Tracking, *statements: tuple[SQL, dict]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            for statement, params in statements:
                curs.execute(statement.format(self.schema), params, prepare=True)

    def track(self, tracking: Tracking) -> None:
        self._change(tracking)

    def campaign_opened(self, tracking: Tracking, campaign_id: UUID, bonus_points: int) -> None:
        self._change(tracking, (SQL(
            "INSERT INTO {0}.peer_campaigns VALUES (%(id)s, %(points)s) "
            "ON CONFLICT (id) DO UPDATE SET bonus_points = EXCLUDED.bonus_points"
        ), {"id": campaign_id, "points": bonus_points}))

    def registered(self, tracking: Tracking, student_id: UUID, ine: str, college_uai: str) -> None:
        self._change(tracking, (SQL(
            "INSERT INTO {0}.peer_students (id, ine, college_uai) VALUES (%(id)s, %(ine)s, %(college)s) "
            "ON CONFLICT (id) DO NOTHING"
        ), {"id": student_id, "ine": ine, "college": college_uai}))

    def college_avis(self, tracking: Tracking, student_id: UUID, avis: str) -> None:
        self._change(tracking, (SQL("UPDATE {0}.peer_students SET college_avis = %(avis)s WHERE id = %(id)s"),
                                {"id": student_id, "avis": avis}))

    def scheduled(self, tracking: Tracking, student_id: UUID, lycee_uai: str, formation_code: str) -> None:
        self._change(tracking, (SQL(
            "INSERT INTO {0}.peer_voeux (student_id, lycee_uai, formation_code) VALUES (%(id)s, %(lycee)s, %(formation)s) "
            "ON CONFLICT DO NOTHING"
        ), {"id": student_id, "lycee": lycee_uai, "formation": formation_code}))

    def held(self, tracking: Tracking, student_id: UUID, lycee_uai: str, formation_code: str, avis_present: bool) -> None:
        self._change(tracking, (SQL(
            "UPDATE {0}.peer_voeux SET interview_held = true, college_avis_present = %(present)s "
            "WHERE student_id = %(id)s AND lycee_uai = %(lycee)s AND formation_code = %(formation)s"
        ), {"id": student_id, "lycee": lycee_uai, "formation": formation_code, "present": avis_present}))

    _RECOUNT = SQL(
        "UPDATE {0}.peer_students s SET total_bonus_points = "
        "(SELECT coalesce(sum(bonus_points), 0) FROM {0}.peer_voeux v WHERE v.student_id = s.id) WHERE s.id = %(id)s"
    )
    _BONUS = (
        "CASE WHEN v.lycee_avis = 'favorable' AND NOT s.withdrawn "
        "THEN (SELECT bonus_points FROM {0}.peer_campaigns LIMIT 1) ELSE 0 END"
    )

    def lycee_avis(self, tracking: Tracking, student_id: UUID, lycee_uai: str, formation_code: str, avis: str) -> None:
        # Events of one aggregate arrive in their order, so the last avis applied is the latest.
        params = {"id": student_id, "lycee": lycee_uai, "formation": formation_code, "avis": avis}
        self._change(
            tracking,
            (SQL("UPDATE {0}.peer_voeux SET lycee_avis = %(avis)s WHERE student_id = %(id)s "
                 "AND lycee_uai = %(lycee)s AND formation_code = %(formation)s"), params),
            (SQL("UPDATE {0}.peer_voeux v SET bonus_points = " + self._BONUS + " FROM {0}.peer_students s "
                 "WHERE s.id = v.student_id AND v.student_id = %(id)s AND v.lycee_uai = %(lycee)s "
                 "AND v.formation_code = %(formation)s"), params),
            (self._RECOUNT, params),
        )

    def withdrawn(self, tracking: Tracking, student_id: UUID, withdrawn: bool) -> None:
        params = {"id": student_id, "withdrawn": withdrawn}
        self._change(
            tracking,
            (SQL("UPDATE {0}.peer_students SET withdrawn = %(withdrawn)s WHERE id = %(id)s"), params),
            (SQL("UPDATE {0}.peer_voeux v SET bonus_points = " + self._BONUS + " FROM {0}.peer_students s "
                 "WHERE s.id = v.student_id AND v.student_id = %(id)s"), params),
            (self._RECOUNT, params),
        )

    def totals(self) -> tuple[int, int, int]:
        """(students, vœux with a bonus, sum of the students' totals)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT count(*) AS n, coalesce(sum(total_bonus_points), 0) AS points "
                             "FROM {0}.peer_students").format(self.schema))
            students = curs.fetchone()
            curs.execute(SQL("SELECT count(*) AS n FROM {0}.peer_voeux WHERE bonus_points > 0").format(self.schema))
            granted = curs.fetchone()
        return students["n"], granted["n"], int(students["points"])


class BonusPeerProjection(Projection[BonusRecorder]):
    name = "bonuspeer"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.track(tracking)  # an event that changes no bonus is still tracked

    @process_event.register
    def _(self, e: Campaign.Opened, tracking: Tracking) -> None:
        self.view.campaign_opened(tracking, e.originator_id, e.bonus_points)

    @process_event.register
    def _(self, e: Student.Registered, tracking: Tracking) -> None:
        self.view.registered(tracking, e.originator_id, e.ine, e.payload["college_uai"])

    @process_event.register
    def _(self, e: Student.CollegeAvisGiven, tracking: Tracking) -> None:
        self.view.college_avis(tracking, e.originator_id, e.payload["avis"])

    @process_event.register
    def _(self, e: Student.InterviewScheduled, tracking: Tracking) -> None:
        self.view.scheduled(tracking, e.originator_id, e.payload["lycee_uai"], e.payload["formation_code"])

    @process_event.register
    def _(self, e: Student.InterviewHeld, tracking: Tracking) -> None:
        p = e.payload
        self.view.held(tracking, e.originator_id, p["lycee_uai"], p["formation_code"], p["college_avis_present"])

    @process_event.register
    def _(self, e: Student.LyceeAvisGiven, tracking: Tracking) -> None:
        p = e.payload
        self.view.lycee_avis(tracking, e.originator_id, p["lycee_uai"], p["formation_code"], p["avis"])

    @process_event.register
    def _(self, e: Student.StudentWithdrawn, tracking: Tracking) -> None:
        self.view.withdrawn(tracking, e.originator_id, True)

    @process_event.register
    def _(self, e: Student.StudentReinstated, tracking: Tracking) -> None:
        self.view.withdrawn(tracking, e.originator_id, False)


def peer_env(database_url: str, schema: str) -> dict[str, str]:
    """The library's configuration (environment variables) for a SQLAlchemy-style PostgreSQL URL."""
    url = urlparse(database_url.replace("postgresql+psycopg://", "postgresql://"))
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_PASSWORD": url.password or "",
        "POSTGRES_SCHEMA": schema,
    }


@dataclass
class PeerResult:
    events: int  # in the peer's log
    processed: int  # by its projection within the time allowed
    write_seconds: float
    catch_up_seconds: float
    finished: bool
    students: int
    bonuses_granted: int
    total_points: int

    @property
    def events_per_s(self) -> float:
        return self.processed / self.catch_up_seconds if self.catch_up_seconds > 0 else 0.0


def write_peer_log(app: Application, events: int, campaign: str, seed: int) -> int:
    """Store the bench's students (same generator and seed as our log) until `events` events are stored."""
    places = Places.from_reference()
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    rng.getrandbits(128)  # our writer draws the campaign's event id first: keep the same histories
    app.save(Campaign._create(Campaign.Opened, id=CAMPAIGN_ID, campaign=campaign, bonus_points=BONUS_POINTS))
    written, n = 1, 0
    while written < events:
        batch = []
        for _ in range(STUDENTS_PER_PIPELINE):
            ine, steps = student_history(n, places, rng, now)
            n += 1
            student = Student._create(Student.Registered, id=uuid5(NAMESPACE_URL, f"{campaign}:{ine}"), ine=ine,
                                      payload=steps[0].payload)
            for step in steps[1:]:
                student.trigger_event(getattr(Student, step.event_type), payload=step.payload)
            batch.append(student)
            written += len(steps)
        # Our writer then draws one event id per event: draw as many, so the next histories stay the same.
        for _ in range(sum(len(student.pending_events) for student in batch)):
            rng.getrandbits(128)
        app.save(*batch)
    return written


def run_peer(database_url: str, schema: str, events: int, campaign: str, seed: int, max_seconds: float) -> PeerResult:
    """Write the peer's log, then time its projection catching up from the start, for `max_seconds` at most
    (its rate is steady: one transaction per event, whatever the size of the log)."""
    env = peer_env(database_url, schema)
    app = PassproPeerApplication(env=env)
    try:
        started = time.perf_counter()
        written = write_peer_log(app, events, campaign, seed)
        write_seconds = time.perf_counter() - started
        last = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    started = time.perf_counter()
    with ProjectionRunner(
        application_class=PassproPeerApplication,
        projection_class=BonusPeerProjection,
        view_class=BonusRecorder,
        env=env,
    ) as runner:
        while True:
            runner.run_forever(timeout=0.05)  # re-raises an error of the processing thread
            processed = runner.view.max_tracking_id(runner.app_name) or 0
            elapsed = time.perf_counter() - started
            if processed >= last or elapsed >= max_seconds:
                break
        students, granted, points = runner.view.totals()
    return PeerResult(written, processed, write_seconds, elapsed, processed >= last, students, granted, points)
