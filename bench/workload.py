"""The bench's own realistic log: students through the whole process, written through the real append script.

Each student is registered by their collège's principal, gets a collège avis
(sometimes corrected, sometimes missing), is scheduled for one to three
interviews at real lycées of the reference data, some of which are cancelled
and rescheduled, holds them, gets a lycée avis per vœu (sometimes corrected);
a few students are withdrawn, some of them reinstated. Histories are drawn from
a seeded random generator, so a given seed and size always give the same log.

The entries are built as the services build them (`event_to_fields`) but
without a pydantic round trip per event, which would cost more than the append
itself; `tests/bench/test_bench_quick.py` checks that every kind of entry reads
back through `event_from_fields` and serialises to the very same fields.

Personal fields are sealed as the services seal them: each student gets a data
key in the key store (wrapped by the master key) before their first event, and
the writer seals with a keyring read back from that key store, with the helpers
`event_to_fields` itself uses. Every reader of the bench log (the catch-ups,
`passpro rebuild`, the reading limit) opens them from the same key store.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from shared.contracts.personal import SEALED, Keyring, associated_data, has_personal_fields, split_personal
from shared.contracts.reference import ReferenceData, default_reference_text, parse_reference
from shared.contracts.streams import StreamKeys
from shared.runtime.keys.crypto import new_key
from shared.runtime.keys.store import KeyStore
from shared.runtime.log.client import append_script

Fields = dict[str, str]
STUDENTS_PER_PIPELINE = 64  # students whose events share one pipeline, interleaved step by step
BONUS_POINTS = 2500


def _json(value: object) -> str:
    # The separators and the raw UTF-8 are those of pydantic's model_dump_json.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _when(moment: datetime) -> str:
    """A datetime inside a payload, as pydantic writes it (whole seconds, `Z`)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Step:
    """One event of a student's history: who records it, and what."""

    service: str  # "registration" or "evaluation": the stream it goes to
    event_type: str
    schema_version: int
    actor: dict
    payload: dict


@dataclass
class Places:
    """The establishments a history may name, from the shipped reference data."""

    colleges: list[str]
    voeux: list[tuple[str, str]]  # (lycée UAI, formation code)

    @classmethod
    def from_reference(cls, reference: ReferenceData | None = None) -> Places:
        reference = reference or parse_reference(default_reference_text())
        colleges = sorted(e.uai for e in reference.establishments if e.type == "college")
        voeux = sorted((e.uai, f.code) for e in reference.establishments if e.type == "lycee" for f in e.formations)
        return cls(colleges, voeux)


def ine_of(prefix: str, n: int) -> str:
    """An INE of the `[0-9]{9}[A-Z]{2}` form: nine digits of `n` and a two-letter tag."""
    return f"{n % 10**9:09d}{prefix}"


def student_history(n: int, places: Places, rng: random.Random, now: datetime, ine_tag: str = "BN") -> tuple[str, list[Step]]:
    """The INE and the events of student `n`, in the order the log receives them (student versions 1, 2, ...)."""
    ine = ine_of(ine_tag, n)
    college = places.colleges[n % len(places.colleges)]
    principal = {"user_id": f"principal.{college.lower()}", "role": "principal", "uai": college}
    referent_user = {"user_id": f"referent.{n % 97}", "name": f"Référent {n % 97}", "email": f"referent{n % 97}@ac-paris.fr"}
    referent = {"user_id": referent_user["user_id"], "role": "referent", "uai": college}
    steps = [
        Step("registration", "StudentRegistered", 1, principal, {
            "college_uai": college, "last_name": f"Élève{n}", "first_name": rng.choice(("Inès", "Adam", "Léa", "Moussa", "Chloé", "Yanis")),
            "class_name": f"3e {'ABCDEF'[n % 6]}", "referent": referent_user,
        }),
    ]
    if rng.random() < 0.05:
        replacement = {"user_id": f"referent.{(n + 1) % 97}", "name": f"Référent {(n + 1) % 97}", "email": f"referent{(n + 1) % 97}@ac-paris.fr"}
        steps.append(Step("registration", "ReferentReassigned", 1, principal, {"referent": replacement}))
    avis_given = rng.random() < 0.95  # the others' interviews are held with "avis du collège manquant"
    if avis_given:
        for _ in range(1 + (rng.random() < 0.1)):  # a correction now and then, before any interview is held
            steps.append(Step("registration", "CollegeAvisGiven", 2, principal, {
                "college_uai": college, "avis": rng.choice(("reserve", "assez_favorable", "favorable", "favorable")),
                "comment": "Élève motivé, projet réfléchi, assidu aux journées portes ouvertes.",
            }))
    wanted = rng.choices((1, 2, 3), weights=(4, 4, 2))[0]
    voeux = rng.sample(places.voeux, wanted)
    scheduled_at = now + timedelta(days=10 + n % 20)
    interviews: list[tuple[str, str, str]] = []
    counter = 0
    for lycee, formation in voeux:
        counter += 1
        interview = f"{ine}-{counter}"
        steps.append(Step("registration", "InterviewScheduled", 2, referent, {
            "interview_id": interview, "lycee_uai": lycee, "formation_code": formation,
            "scheduled_at": _when(scheduled_at), "mode": "presentiel", "remote_equipment_ready": False, "slot_id": None,
            "room": None,
        }))
        if rng.random() < 0.1:
            by_lycee = rng.random() < 0.5
            canceller = {"user_id": f"staff.{lycee.lower()}", "role": "lycee_staff", "uai": lycee} if by_lycee else referent
            steps.append(Step("evaluation" if by_lycee else "registration", "InterviewCancelled", 1, canceller, {
                "interview_id": interview, "lycee_uai": lycee, "formation_code": formation,
                "reason": rng.choice(("absent", "reporte", "desistement")),
            }))
            if rng.random() < 0.5:
                continue  # the student gave this vœu up
            counter += 1
            interview = f"{ine}-{counter}"
            steps.append(Step("registration", "InterviewScheduled", 2, referent, {
                "interview_id": interview, "lycee_uai": lycee, "formation_code": formation,
                "scheduled_at": _when(scheduled_at + timedelta(days=7)), "mode": "distanciel", "remote_equipment_ready": True,
                "slot_id": None, "room": "Salle 104",  # a distanciel free time names the collège's room (7a2f808)
            }))
        interviews.append((interview, lycee, formation))
    for interview, lycee, formation in interviews:
        staff = {"user_id": f"staff.{lycee.lower()}", "role": "lycee_staff", "uai": lycee}
        steps.append(Step("evaluation", "InterviewHeld", 1, staff, {
            "interview_id": interview, "lycee_uai": lycee, "formation_code": formation,
            "held_at": _when(now - timedelta(days=1)), "mode": "presentiel", "college_avis_present": avis_given,
            "report": {
                "motivation": rng.choice(("fragile", "satisfaisante", "tres_satisfaisante")),
                "chances_of_success": rng.choice(("insuffisante", "fragile", "satisfaisante", "tres_satisfaisante")),
                "advice": "Poursuivre les stages d'observation et préparer le projet avec le référent.",
            },
        }))
    for interview, lycee, formation in interviews:
        proviseur = {"user_id": f"proviseur.{lycee.lower()}", "role": "proviseur", "uai": lycee}
        for _ in range(1 + (rng.random() < 0.1)):  # the latest avis counts; a correction now and then
            steps.append(Step("evaluation", "LyceeAvisGiven", 1, proviseur, {
                "interview_id": interview, "lycee_uai": lycee, "formation_code": formation,
                "avis": "favorable" if rng.random() < 0.65 else "reserve",
            }))
    if rng.random() < 0.02:
        steps.append(Step("registration", "StudentWithdrawn", 1, principal, {"reason": "Déménagement hors académie"}))
        if rng.random() < 0.5:
            steps.append(Step("registration", "StudentReinstated", 1, principal, {"reason": "Retour dans l'académie"}))
    return ine, steps


def entry_fields(step: Step, ine: str | None, campaign: str, occurred_at: str, event_id: str) -> Fields:
    """The entry's own fields, exactly as `event_to_fields` writes them."""
    return {
        "event_id": event_id,
        "event_type": step.event_type,
        "schema_version": str(step.schema_version),
        "student_ine": ine or "",
        "campaign": campaign,
        "occurred_at": occurred_at,
        "actor": _json(step.actor),
        "payload": _json(step.payload),
    }


def seal_fields(fields: Fields, keyring: Keyring) -> Fields:
    """The entry with its personal fields sealed, exactly as `event_to_fields(event, keyring)` seals them:
    the payload without them, then a `sealed` field bound to the event. An entry without any is unchanged."""
    event_type, ine = fields["event_type"], fields["student_ine"]
    if not ine or not has_personal_fields(event_type):
        return fields
    clear, personal = split_personal(event_type, json.loads(fields["payload"]))
    if not personal:
        return fields
    fields = {**fields, "payload": _json(clear)}
    fields[SEALED] = keyring.seal(fields["campaign"], ine, associated_data(fields["event_id"], event_type),
                                  _json(personal).encode())
    return fields


def keyring_of_new_students(keystore: KeyStore, campaign: str, ines: list[str]) -> Keyring:
    """Give each of these students their data key in the key store (a key already there wins, as with
    `keyring_for_writing`), and return their keyring as read back from it: one transaction and one
    read per batch, where a service does it per student's first event."""
    keystore.restore(campaign, {ine: keystore.master.wrap(new_key(), campaign, ine) for ine in ines})
    return keystore.keyring([(campaign, ine) for ine in ines])


def campaign_opened_fields(campaign: str, rng: random.Random, now: datetime) -> Fields:
    step = Step("rectorat", "CampaignOpened", 1, {"user_id": "bench", "role": "rectorat", "uai": None},
                {"bonus_points": BONUS_POINTS, "closes_at": None})
    return entry_fields(step, None, campaign, now.isoformat(), str(uuid.UUID(int=rng.getrandbits(128), version=4)))


@dataclass
class LogWriter:
    """Appends the bench's students to a log through the append script, many per pipeline, their
    personal fields sealed with keys of `keystore` (None: in clear, the format before sealing).

    Successive calls to `write` go on from the last student written, so a log
    can be grown in stages (10k, then 100k, then 1M events) and measured at each.
    """

    redis: Redis
    keys: StreamKeys
    campaign: str
    keystore: KeyStore | None
    seed: int = 7
    ine_tag: str = "BN"
    places: Places = field(default_factory=Places.from_reference)
    events: int = 0
    students: int = 0
    ines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self._sha: str | None = None

    async def open_campaign(self) -> None:
        fields = campaign_opened_fields(self.campaign, self.rng, self.now)
        await self._append_all([(self.keys.rectorat, self.keys.rectorat, self.keys.event_ids(None), 0, fields)])
        self.events += 1

    async def _append_all(self, calls: list[tuple[str, str, str, int, Fields]]) -> None:
        if self._sha is None:
            self._sha = await self.redis.script_load(append_script())
        pipe = self.redis.pipeline(transaction=False)
        for service_key, student_key, ids_key, version, fields in calls:
            args = [str(version), fields["event_id"], "bench"]
            for name, value in fields.items():
                args += [name, value]
            pipe.evalsha(self._sha, 3, service_key, student_key, ids_key, *args)
        for reply in await pipe.execute():
            status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            if status != "ok":
                raise RuntimeError(f"the append script refused a bench event: {reply!r}")

    def _batch(self, count: int) -> Iterator[tuple[str, str, str, int, Fields]]:
        """The appends of `count` more students, interleaved step by step as services would interleave them."""
        histories = []
        for _ in range(count):
            ine, steps = student_history(self.students, self.places, self.rng, self.now, self.ine_tag)
            histories.append((ine, steps))
            self.ines.append(ine)
            self.students += 1
        keyring = None
        if self.keystore is not None:
            keyring = keyring_of_new_students(self.keystore, self.campaign, [ine for ine, _ in histories])
        depth = max(len(steps) for _, steps in histories)
        stamp = self.now.isoformat()
        for version in range(depth):
            for ine, steps in histories:
                if version < len(steps):
                    step = steps[version]
                    event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                    fields = entry_fields(step, ine, self.campaign, stamp, event_id)
                    yield (
                        self.keys.service(self.campaign, step.service),
                        self.keys.student(self.campaign, ine),
                        self.keys.event_ids(self.campaign),
                        version,
                        fields if keyring is None else seal_fields(fields, keyring),
                    )

    async def write(self, until_events: int) -> int:
        """Append whole students until the log holds at least `until_events` events; return how many were added."""
        added = 0
        while self.events < until_events:
            calls = list(self._batch(STUDENTS_PER_PIPELINE))
            await self._append_all(calls)
            self.events += len(calls)
            added += len(calls)
        return added
