"""The rights matrix of SPEC §1 as data, and a shared world of running services for the table-driven HTTP tests.

A `World` is one académie with campaign 2027 open and the three services running in
process. It lives for one test module, so hundreds of table rows share one start-up;
each row still works on students of its own (a fresh INE), so no row depends on another.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from conftest import Passpro

COLLEGE = "0752536Z"  # Collège Voltaire
OTHER_COLLEGE = "0751790N"  # Collège Pierre Alviset
LYCEE = "0752845K"  # LP Théophile Gautier
FORMATION = "2473121131"  # offered by Théophile Gautier
OTHER_LYCEE = "0750788Z"  # LP Marcel Deprez
OTHER_LYCEE_FORMATION = "2472550731"  # offered by Marcel Deprez, not by Théophile Gautier


# --- who calls ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    label: str
    role: str
    uai: str | None


PRINCIPAL = Caller("principal", "principal", COLLEGE)
OTHER_PRINCIPAL = Caller("principal-of-another-college", "principal", OTHER_COLLEGE)
REFERENT = Caller("referent", "referent", COLLEGE)
OTHER_REFERENT = Caller("referent-of-another-college", "referent", OTHER_COLLEGE)
STAFF = Caller("lycee-staff", "lycee_staff", LYCEE)
OTHER_STAFF = Caller("lycee-staff-of-another-lycee", "lycee_staff", OTHER_LYCEE)
PROVISEUR = Caller("proviseur", "proviseur", LYCEE)
OTHER_PROVISEUR = Caller("proviseur-of-another-lycee", "proviseur", OTHER_LYCEE)
RECTORAT = Caller("rectorat", "rectorat", None)

# The columns of the tables below. "Another" means another establishment than the student's:
# the student belongs to COLLEGE and has an interview scheduled at LYCEE only.
CALLERS = (
    PRINCIPAL, OTHER_PRINCIPAL, REFERENT, OTHER_REFERENT,
    STAFF, OTHER_STAFF, PROVISEUR, OTHER_PROVISEUR, RECTORAT,
)


# --- what is expected ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """The answer a caller must get: a status, and the error code of a refusal."""

    status: int
    error: str | None = None

    def __str__(self) -> str:
        return f"{self.status}" + (f" {self.error}" if self.error else "")


OK = Answer(201)
READ = Answer(200)
ROLE = Answer(403, "role_forbidden")  # the role may not do this
OTHER = Answer(403, "other_establishment")  # the body names another establishment than the caller's
HIDDEN = Answer(404, "student_not_found")  # a student the caller may not see


# --- the writes --------------------------------------------------------------------------------------------


def referent_body(name: str = "Claire Dupont") -> dict:
    return {"user_id": "referent-dupont", "name": name, "email": "claire.dupont@ac-paris.fr"}


def register_body(ine: str, college: str = COLLEGE) -> dict:
    return {
        "student_ine": ine,
        "college_uai": college,
        "last_name": "Martin",
        "first_name": "Léa",
        "class_name": "3e B",
        "referent": referent_body(),
    }


def _voeu_slots() -> dict[tuple[str, str], int]:
    from shared.contracts.reference import default_reference_text, parse_reference

    reference = parse_reference(default_reference_text())
    pairs = [(e.uai, f.code) for e in reference.establishments if e.type == "lycee" for f in e.formations]
    return {pair: n for n, pair in enumerate(pairs)}


VOEU_SLOTS = _voeu_slots()


def schedule_body(lycee: str = LYCEE, formation: str = FORMATION) -> dict:
    """A week ahead, each vœu at its own time (45 minutes apart): a student's interviews never overlap (rule 10)."""
    at = datetime.now(UTC) + timedelta(days=7, minutes=45 * VOEU_SLOTS.get((lycee, formation), 0))
    return {
        "lycee_uai": lycee,
        "formation_code": formation,
        "scheduled_at": at.isoformat(),
        "mode": "presentiel",
    }


def cancel_body(lycee: str = LYCEE, formation: str = FORMATION) -> dict:
    return {"lycee_uai": lycee, "formation_code": formation, "reason": "reporte"}


def college_avis_body(college: str = COLLEGE, avis: str = "favorable") -> dict:
    return {"college_uai": college, "avis": avis, "comment": "Élève motivée et impliquée."}


def held_body(lycee: str = LYCEE, formation: str = FORMATION) -> dict:
    return {
        "lycee_uai": lycee,
        "formation_code": formation,
        "held_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "report": {"motivation": "satisfaisante", "chances_of_success": "fragile", "advice": "Visiter l'atelier."},
    }


def reschedule_body(lycee: str = LYCEE, formation: str = FORMATION) -> dict:
    """A move of the vœu's interview to a free time (SPEC §7); a day after schedule_body's time."""
    moved_to = datetime.now(UTC) + timedelta(days=8)
    return {"lycee_uai": lycee, "formation_code": formation, "scheduled_at": moved_to.isoformat(), "mode": "presentiel"}


def report_body(lycee: str = LYCEE, formation: str = FORMATION) -> dict:
    """A held interview's report corrected (SPEC §7)."""
    report = {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante", "advice": "Persévérer."}
    return {"lycee_uai": lycee, "formation_code": formation, "report": report}


def letter_body(lycee: str = LYCEE, formation: str = FORMATION) -> dict:
    """The student's guided motivation letter for the vœu (SPEC §6), a draft of two answers."""
    answers = {"pourquoi": "J'aime conseiller les gens.", "trajet": "Métro ligne 8 puis à pied."}
    return {"lycee_uai": lycee, "formation_code": formation, "answers": answers, "ready": False}


def preparation_body() -> dict:
    """An interview's preparation checklist (SPEC §6)."""
    return {"itinerary_ready": True, "letter_printed": False, "materials_ready": True}


def lycee_avis_body(lycee: str = LYCEE, formation: str = FORMATION, avis: str = "favorable") -> dict:
    return {"lycee_uai": lycee, "formation_code": formation, "avis": avis}


@dataclass(frozen=True)
class Write:
    """One write endpoint: where it lives, what the student must have been through, a valid body."""

    name: str
    service: str
    path: str  # `{ine}` is the student's INE, `{interview_id}` their interview's id
    situation: str  # see World.prepare
    body: Callable[[str], dict]  # the INE (or campaign year) -> a body naming the student's establishments
    by_student: bool = False  # the student's own write (/api/me): only a student token of that INE may

    def url(self, ine: str, interview_id: str = "") -> str:
        return self.path.format(ine=ine, interview_id=interview_id or "no-interview")


WRITES = {
    w.name: w
    for w in (
        Write("register", "registration", "/api/students", "fresh", register_body),
        Write("referent", "registration", "/api/students/{ine}/referent", "registered", lambda _: {"referent": referent_body("Paul Bernard")}),
        Write("schedule", "registration", "/api/students/{ine}/interviews", "registered", lambda _: schedule_body()),
        Write("cancel-by-college", "registration", "/api/students/{ine}/interviews/cancel", "scheduled", lambda _: cancel_body()),
        Write("college-avis", "registration", "/api/students/{ine}/college-avis", "registered", lambda _: college_avis_body()),
        Write("withdrawal", "registration", "/api/students/{ine}/withdrawal", "registered", lambda _: {"reason": "Déménagement"}),
        Write("reinstatement", "registration", "/api/students/{ine}/reinstatement", "withdrawn", lambda _: {"reason": "Retour"}),
        Write("held", "evaluation", "/api/students/{ine}/interviews/held", "scheduled", lambda _: held_body()),
        Write("cancel-by-lycee", "evaluation", "/api/students/{ine}/interviews/cancel", "scheduled", lambda _: cancel_body()),
        Write("lycee-avis", "evaluation", "/api/students/{ine}/lycee-avis", "held", lambda _: lycee_avis_body()),
        Write("reschedule", "registration", "/api/students/{ine}/interviews/reschedule", "scheduled", lambda _: reschedule_body()),
        Write("report", "evaluation", "/api/students/{ine}/interviews/report", "held", lambda _: report_body()),
        Write("open-campaign", "scoring", "/api/campaigns", "campaign", lambda year: {"campaign": year}),
        Write("calendar", "scoring", "/api/campaigns/{ine}/calendar", "opened-campaign",
              lambda _: {"interviews_from": (datetime.now(UTC) + timedelta(days=1)).isoformat()}),
        Write("access-code", "registration", "/api/students/{ine}/access-code", "registered", lambda _: {}),
        Write("letter", "registration", "/api/me/letters", "scheduled", lambda _: letter_body(), by_student=True),
        Write("my-preparation", "registration", "/api/me/interviews/{interview_id}/preparation", "scheduled",
              lambda _: preparation_body(), by_student=True),
        Write("preparation", "registration", "/api/students/{ine}/interviews/{interview_id}/preparation", "scheduled",
              lambda _: preparation_body()),
    )
}

# SPEC §1, write by write, when the body names the student's own collège and lycée.
#                          principal  (other)  referent  (other)  staff  (other)  proviseur  (other)  rectorat
WRITE_RIGHTS: dict[str, tuple[Answer, ...]] = {
    "register":            (OK,       OTHER,   ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "referent":            (OK,       HIDDEN,  ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "schedule":            (OK,       HIDDEN,  OK,       HIDDEN,  ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "cancel-by-college":   (OK,       HIDDEN,  OK,       HIDDEN,  ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "college-avis":        (OK,       OTHER,   ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "withdrawal":          (OK,       HIDDEN,  ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "reinstatement":       (OK,       HIDDEN,  ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "held":                (ROLE,     ROLE,    ROLE,     ROLE,    OK,    OTHER,   OK,        OTHER,   ROLE),
    "cancel-by-lycee":     (ROLE,     ROLE,    ROLE,     ROLE,    OK,    OTHER,   OK,        OTHER,   ROLE),
    "lycee-avis":          (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    OK,        OTHER,   ROLE),
    "reschedule":          (OK,       HIDDEN,  OK,       HIDDEN,  ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "report":              (ROLE,     ROLE,    ROLE,     ROLE,    OK,    OTHER,   OK,        OTHER,   ROLE),
    "open-campaign":       (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    OK),
    "calendar":            (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    OK),
    "access-code":         (OK,       HIDDEN,  OK,       HIDDEN,  ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "letter":              (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "my-preparation":      (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "preparation":         (OK,       HIDDEN,  OK,       HIDDEN,  ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
}  # fmt: skip
# The student's own writes (SPEC §6), by the student of the case's INE: what they may do, and never another's.
STUDENT = Caller("student", "eleve", COLLEGE)
STUDENT_RIGHTS: dict[str, Answer] = {"letter": OK, "my-preparation": OK, "preparation": ROLE}

_ANOTHER_COLLEGE = {"college_uai": OTHER_COLLEGE}
_ANOTHER_LYCEE = {"lycee_uai": OTHER_LYCEE, "formation_code": OTHER_LYCEE_FORMATION}
_ITS_OWN_COLLEGE = _ANOTHER_COLLEGE  # for a caller of OTHER_COLLEGE, its own collège
_ITS_OWN_LYCEE = _ANOTHER_LYCEE  # for a caller of OTHER_LYCEE, its own lycée (and a formation it offers)

# The same writes with the body naming another establishment: the caller's own one when
# the caller belongs elsewhere (the student stays invisible: 404), or one that is not
# the caller's (403, before anything is looked up).
#                  write               caller            body changes       expected
BODY_VARIANTS: list[tuple[str, Caller, str, dict, Answer]] = [
    ("register",        PRINCIPAL,        "another-college",  _ANOTHER_COLLEGE, OTHER),
    ("college-avis",    PRINCIPAL,        "another-college",  _ANOTHER_COLLEGE, OTHER),
    ("college-avis",    OTHER_PRINCIPAL,  "its-own-college",  _ITS_OWN_COLLEGE, HIDDEN),
    ("held",            STAFF,            "another-lycee",    _ANOTHER_LYCEE,   OTHER),
    ("held",            PROVISEUR,        "another-lycee",    _ANOTHER_LYCEE,   OTHER),
    ("held",            OTHER_STAFF,      "its-own-lycee",    _ITS_OWN_LYCEE,   HIDDEN),
    ("held",            OTHER_PROVISEUR,  "its-own-lycee",    _ITS_OWN_LYCEE,   HIDDEN),
    ("cancel-by-lycee", STAFF,            "another-lycee",    _ANOTHER_LYCEE,   OTHER),
    ("cancel-by-lycee", PROVISEUR,        "another-lycee",    _ANOTHER_LYCEE,   OTHER),
    ("cancel-by-lycee", OTHER_STAFF,      "its-own-lycee",    _ITS_OWN_LYCEE,   HIDDEN),
    ("cancel-by-lycee", OTHER_PROVISEUR,  "its-own-lycee",    _ITS_OWN_LYCEE,   HIDDEN),
    ("lycee-avis",      PROVISEUR,        "another-lycee",    _ANOTHER_LYCEE,   OTHER),
    ("lycee-avis",      OTHER_PROVISEUR,  "its-own-lycee",    _ITS_OWN_LYCEE,   HIDDEN),
    ("lycee-avis",      OTHER_STAFF,      "its-own-lycee",    _ITS_OWN_LYCEE,   ROLE),
    ("report",          STAFF,            "another-lycee",    _ANOTHER_LYCEE,   OTHER),
    ("report",          OTHER_STAFF,      "its-own-lycee",    _ITS_OWN_LYCEE,   HIDDEN),
]  # fmt: skip


@dataclass(frozen=True)
class WriteCase:
    write: Write
    caller: Caller
    body_names: str
    body_changes: dict
    expected: Answer

    @property
    def id(self) -> str:
        return f"{self.write.name} by {self.caller.label}, body naming {self.body_names} -> {self.expected}"


def write_cases() -> list[WriteCase]:
    """Every row of WRITE_RIGHTS and BODY_VARIANTS as one case."""
    cases = [
        WriteCase(WRITES[name], caller, "the-students-establishments", {}, expected)
        for name, row in WRITE_RIGHTS.items()
        for caller, expected in zip(CALLERS, row, strict=True)
    ]
    cases += [
        WriteCase(WRITES[name], caller, names, changes, expected)
        for name, caller, names, changes, expected in BODY_VARIANTS
    ]
    return cases


# --- the reads ---------------------------------------------------------------------------------------------

# Who may read what: the rectorat reads everything; the collège its students, the lycée its interviews.
#                          principal  (other)  referent  (other)  staff  (other)  proviseur  (other)  rectorat
READ_RIGHTS: dict[str, tuple[Answer, ...]] = {
    "establishments":      (READ,     READ,    READ,     READ,    READ,  READ,    READ,      READ,    READ),
    "formations":          (READ,     READ,    READ,     READ,    READ,  READ,    READ,      READ,    READ),
    "students":            (READ,     READ,    READ,     READ,    ROLE,  ROLE,    ROLE,      ROLE,    READ),
    "interviews":          (ROLE,     ROLE,    ROLE,     ROLE,    READ,  READ,    READ,      READ,    READ),
    "student-bonus":       (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    READ),
    "bonuses":             (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    READ),
    "summary":             (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    READ),
    "affelnet-export":     (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    READ),
    "audit":               (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    READ),
    "me":                  (ROLE,     ROLE,    ROLE,     ROLE,    ROLE,  ROLE,    ROLE,      ROLE,    ROLE),
    "calendar":            (READ,     READ,    READ,     READ,    READ,  READ,    READ,      READ,    READ),
}  # fmt: skip
# The eleve column (SPEC §6): a student of COLLEGE reads their own file, the formations and the reference data
# (any signed-in user, SPEC §2); every staff read is 403.
STUDENT_READ_RIGHTS: dict[str, Answer] = {
    "establishments": READ, "formations": READ, "students": ROLE, "interviews": ROLE, "student-bonus": ROLE,
    "bonuses": ROLE, "summary": ROLE, "affelnet-export": ROLE, "audit": ROLE, "me": READ, "calendar": ROLE,
}


# --- shared checks -----------------------------------------------------------------------------------------

_FRENCH_MARKERS = re.compile(
    r"[àâäçéèêëîïôöùûüÿœÀÂÇÉÈÊÎÔÙÛ]|\b(?:le|la|les|de|du|des|un|une|est|ne|pas|pour|ou|et|ce|cet|cette|"
    r"votre|vous|non|trop|aucun|aucune|champ|valeur|texte|attendu|attendue|invalide|inconnu|inconnue|obligatoire|"
    r"interdits?|introuvable|ressource|erreur|jeton)\b|"
    r"\b[ldnqs]'",
    re.IGNORECASE,
)
_ENGLISH_MARKERS = re.compile(
    r"\b(?:the|is|are|was|not|error|there|field|required|value|valid|invalid|expected|must|should|"
    r"input|body|string|parsing|missing|found|allowed|method|request)\b",
    re.IGNORECASE,
)


def is_french(text: object) -> bool:
    """A rough but effective test that a user-facing message is a French sentence, not English."""
    return (
        isinstance(text, str)
        and bool(text.strip())
        and bool(_FRENCH_MARKERS.search(text))
        and not _ENGLISH_MARKERS.search(text)
    )


def refusal_problems(status: int, body: object) -> list[str]:
    """What is wrong with a 4xx answer's body (SPEC §3.1, §5): empty when it is a proper refusal."""
    problems = []
    if not isinstance(body, dict):
        return [f"not a JSON object: {body!r:.200}"]
    if not isinstance(body.get("error"), str) or not body["error"]:
        problems.append("no `error` code")
    if not is_french(body.get("message")):
        problems.append(f"message not in French: {body.get('message')!r:.200}")
    if status == 422:
        fields = body.get("fields")
        if not isinstance(fields, list) or not fields:
            problems.append("a 422 that names no field")
        else:
            for f in fields:
                if not isinstance(f, dict) or not isinstance(f.get("field"), str):
                    problems.append(f"a field entry without its name: {f!r:.200}")
                elif not is_french(f.get("message")):
                    problems.append(f"field {f['field']}: message not in French: {f.get('message')!r:.200}")
    return problems


def delete_academie_keys(client: redis_sync.Redis, academie: str) -> None:
    keys = list(client.scan_iter(match=f"passpro:{{{academie}}}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


# --- the shared world ----------------------------------------------------------------------------------------


@dataclass
class World:
    """One académie with campaign 2027 open and the three services running in process."""

    passpro: Passpro
    clients: dict[str, TestClient]
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    interviews: dict[str, str] = field(default_factory=dict)  # INE -> the interview prepare() scheduled

    def fresh_ine(self) -> str:
        return f"{next(self._numbers):09d}MX"

    def fresh_campaign(self) -> str:
        return str(3000 + next(self._numbers))

    def headers(self, caller: Caller, ine: str | None = None) -> dict[str, str]:
        """The caller's token; a student's (role eleve) names `ine`, the student they are."""
        if caller.role == "eleve":
            return {"Authorization": f"Bearer {self.passpro.token(caller.role, caller.uai, f'eleve-{ine}', ine=ine)}"}
        return self.passpro.auth(caller.role, caller.uai)

    def post(self, service: str, path: str, body: dict, caller: Caller, **kwargs):
        return self.clients[service].post(path, json=body, headers=self.headers(caller), **kwargs)

    def get(self, service: str, path: str, caller: Caller, **kwargs):
        return self.clients[service].get(path, headers=self.headers(caller), **kwargs)

    def ok(self, service: str, path: str, body: dict, caller: Caller) -> dict:
        response = self.post(service, path, body, caller)
        assert response.status_code == 201, response.text
        return response.json()

    def prepare(self, situation: str) -> str:
        """A new student (or campaign year) in `situation`, made by its collège and its lycée."""
        if situation == "campaign":
            return self.fresh_campaign()
        if situation == "opened-campaign":  # a campaign of its own, open, for its calendar (SPEC §7)
            year = self.fresh_campaign()
            self.ok("scoring", "/api/campaigns", {"campaign": year}, RECTORAT)
            return year
        ine = self.fresh_ine()
        if situation == "fresh":
            return ine
        self.ok("registration", "/api/students", register_body(ine), PRINCIPAL)
        if situation == "withdrawn":
            self.ok("registration", f"/api/students/{ine}/withdrawal", {"reason": "Abandon"}, PRINCIPAL)
        if situation in ("scheduled", "held"):
            scheduled = self.ok("registration", f"/api/students/{ine}/interviews", schedule_body(), PRINCIPAL)
            self.interviews[ine] = scheduled["event"]["payload"]["interview_id"]
        if situation == "held":
            self.ok("evaluation", f"/api/students/{ine}/interviews/held", held_body(), STAFF)
        return ine

    def log_state(self) -> dict[str, tuple[str, object]]:
        """Every key of the académie with its type and size, in three round trips however many keys:
        equal states mean nothing was stored."""
        client, keys = self.passpro.redis, sorted(self.passpro.redis.scan_iter(match=f"passpro:{{{self.passpro.academie}}}*", count=1000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = [k.decode() for k in pipe.execute()]
        pipe = client.pipeline(transaction=False)
        for key, kind in zip(keys, kinds, strict=True):
            {"stream": pipe.xlen, "hash": pipe.hlen}.get(kind, pipe.dump)(key)
        return {key.decode(): (kind, size) for key, kind, size in zip(keys, kinds, pipe.execute(), strict=True)}

    def stream_lengths(self, ine: str | None = None) -> dict[str, int]:
        """The lengths of every stream a write of the campaign could append to (and the student's)."""
        keys = [self.passpro.service_stream("registration"), self.passpro.service_stream("evaluation"), self.passpro.keys.rectorat]
        if ine:
            keys.append(self.passpro.student_stream(ine))
        return {key: self.passpro.xlen(key) for key in keys}


@pytest.fixture(scope="module")
def world(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world for the whole module: its own académie, deleted afterwards."""
    academie = "m" + uuid.uuid4().hex[:10]
    data_dir: Path = tmp_path_factory.mktemp("world")
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        passpro = Passpro(redis_url=redis_url, academie=academie, data_dir=data_dir, redis=client)
        try:
            passpro.open_campaign()
            with contextlib.ExitStack() as stack:
                clients = {name: stack.enter_context(passpro.client(name)) for name in ("registration", "evaluation", "scoring")}
                yield World(passpro, clients)
        finally:
            delete_academie_keys(client, academie)
