"""Writes realistic student histories through the real append script, pipelined (as bench/catchup.py does),
and remembers what each student's bonus must be, as an oracle independent of the projection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

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
    event_to_fields,
)
from shared.contracts.streams import StreamKeys
from shared.runtime.log.client import append_script

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
BONUS = 2500
COLLEGE = "0752536Z"
VOEUX = [("0750784V", "2472340631"), ("0752845K", "2473121131")]
PRINCIPAL = Actor(user_id="principal", role="principal", uai=COLLEGE)
REFERENT = Referent(user_id="referent", name="Claire Dupont", email="claire.dupont@ac-paris.fr")
REPORT = Report(motivation="satisfaisante", chances_of_success="fragile", advice="Visiter l'atelier.")
STUDENTS_PER_PIPELINE = 100


def ine_of(n: int) -> str:
    return f"{n:09d}RL"


def proviseur(lycee: str) -> Actor:
    return Actor(user_id=f"proviseur-{lycee}", role="proviseur", uai=lycee)


@dataclass
class Student:
    version: int = 0
    withdrawn: bool = False
    latest_avis: dict[tuple[str, str], str] = field(default_factory=dict)

    def expected_bonus(self) -> int:
        return 0 if self.withdrawn else BONUS * sum(a == "favorable" for a in self.latest_avis.values())


class LogWriter:
    def __init__(self, redis: Redis, keys: StreamKeys) -> None:
        self.redis = redis
        self.keys = keys
        self.script = redis.register_script(append_script())
        self.students: dict[str, Student] = {}
        self.written = 0
        self.now = datetime.now(UTC)

    async def open_campaign(self) -> None:
        event = Event(event_id=uuid.uuid4(), occurred_at=self.now, campaign=CAMPAIGN,
                      actor=Actor(user_id="rectorat", role="rectorat"), payload=CampaignOpened(bonus_points=BONUS))
        await self.script(keys=[self.keys.rectorat, self.keys.rectorat, self.keys.event_ids(None)],
                          args=["0", str(event.event_id), "writer", *sum(event_to_fields(event).items(), ())])
        self.written += 1

    def history(self, n: int) -> list[tuple[str, Payload, Actor]]:
        """(service, payload, actor) of student n: registered, collège avis, then per vœu scheduled, held and
        a lycée avis; a second vœu every 4th student, a corrected avis every 5th, a withdrawal every 13th."""
        history: list[tuple[str, Payload, Actor]] = [
            ("registration", StudentRegistered(college_uai=COLLEGE, last_name="Nom", first_name="Prénom",
                                               class_name="3e A", referent=REFERENT), PRINCIPAL),
            ("registration", CollegeAvisGiven(college_uai=COLLEGE, avis="favorable", comment="Motivé."), PRINCIPAL),
        ]
        for v, (lycee, formation) in enumerate(VOEUX[: 2 if n % 4 == 0 else 1]):
            interview = f"i{n}-{v}"
            history += [
                ("registration", InterviewScheduled(interview_id=interview, lycee_uai=lycee, formation_code=formation,
                                                    scheduled_at=self.now + timedelta(days=3), mode="presentiel"),
                 PRINCIPAL),
                ("evaluation", InterviewHeld(interview_id=interview, lycee_uai=lycee, formation_code=formation,
                                             held_at=self.now, mode="presentiel", college_avis_present=True,
                                             report=REPORT), proviseur(lycee)),
                ("evaluation", LyceeAvisGiven(interview_id=interview, lycee_uai=lycee, formation_code=formation,
                                              avis="favorable" if (n + v) % 3 else "reserve"), proviseur(lycee)),
            ]
            if n % 5 == 0:
                history.append(self._correction(n, v))
        if n % 13 == 0:
            history.append(("registration", StudentWithdrawn(reason="Déménagement"), PRINCIPAL))
        return history

    def _correction(self, n: int, v: int, avis: str | None = None) -> tuple[str, Payload, Actor]:
        lycee, formation = VOEUX[v]
        avis = avis or ("reserve" if (n + v) % 3 else "favorable")
        return ("evaluation", LyceeAvisGiven(interview_id=f"i{n}-{v}", lycee_uai=lycee, formation_code=formation,
                                             avis=avis), proviseur(lycee))

    async def _append(self, pipe, n: int, service: str, payload: Payload, actor: Actor, **overrides: str) -> Event:
        """Queue one event of student n at their current version; `overrides` replace fields as stored."""
        ine = ine_of(n)
        student = self.students.setdefault(ine, Student())
        event = Event(event_id=uuid.uuid4(), occurred_at=self.now, campaign=CAMPAIGN, student_ine=ine, actor=actor,
                      payload=payload)
        fields = event_to_fields(event) | overrides
        await self.script(
            keys=[self.keys.service(CAMPAIGN, service), self.keys.student(CAMPAIGN, ine), self.keys.event_ids(CAMPAIGN)],
            args=[str(student.version), str(event.event_id), "writer", *sum(fields.items(), ())],
            client=pipe,
        )
        student.version += 1
        if isinstance(payload, LyceeAvisGiven):
            student.latest_avis[(payload.lycee_uai, payload.formation_code)] = payload.avis
        if isinstance(payload, StudentWithdrawn):
            student.withdrawn = True
        self.written += 1
        return event

    async def one(self, n: int, service: str, payload: Payload, actor: Actor = PRINCIPAL, **overrides: str) -> tuple[str, Event]:
        """Append one event of student n now; returns its id in the service stream, and the event."""
        pipe = self.redis.pipeline(transaction=False)
        event = await self._append(pipe, n, service, payload, actor, **overrides)
        (reply,) = await pipe.execute()
        assert reply[0] in (b"ok", "ok"), reply
        return (reply[1].decode() if isinstance(reply[1], bytes) else reply[1]), event

    async def _run(self, steps: list[tuple[int, str, Payload, Actor]]) -> None:
        for start in range(0, len(steps), STUDENTS_PER_PIPELINE * 6):
            pipe = self.redis.pipeline(transaction=False)
            for n, service, payload, actor in steps[start : start + STUDENTS_PER_PIPELINE * 6]:
                await self._append(pipe, n, service, payload, actor)
            replies = await pipe.execute()
            assert all(r[0] in (b"ok", "ok") for r in replies), [r for r in replies if r[0] not in (b"ok", "ok")][:3]

    async def students_from(self, first: int, count: int) -> None:
        await self._run([(n, *step) for n in range(first, first + count) for step in self.history(n)])

    async def corrections(self, numbers: list[int]) -> None:
        """Another lycée avis on each student's first vœu, reversing its latest one."""
        steps = []
        for n in numbers:
            latest = self.students[ine_of(n)].latest_avis[VOEUX[0]]
            steps.append((n, *self._correction(n, 0, "reserve" if latest == "favorable" else "favorable")))
        await self._run(steps)

    def expected_totals(self) -> dict[str, int]:
        return {ine: s.expected_bonus() for ine, s in self.students.items()}
