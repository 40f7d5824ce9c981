"""Erasure (issue 5, item 2): `passpro forget INE` leaves nothing of the student's personal data anywhere,
while the bonus and the audit trail stand.

The three services run in process with their consumers (TestClient), on real Redis (an académie of the
test's own) and real databases: their views in SQLite files or PostgreSQL schemas, the key store beside
them. One student with distinctive personal data goes through every event that carries some; then
`passpro forget` runs, and every Redis key, every table row, the SQLite files themselves, every answer
and page, and every log record are searched for that data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from sqlalchemy import MetaData, Table, create_engine, delete, inspect, select, text

from cli_world import databases_of, set_environment
from services_world import Passpro
from in_process import SERVICES, InProcessServices
from matrix import COLLEGE, FORMATION, LYCEE, is_french, schedule_body
from services.cli.common import migrate_all, open_campaign, service_settings
from services.records.erasure import forget
from shared.domain.errors import RuleViolation
from shared.contracts.events import CampaignOpened
from shared.contracts.personal import ERASED
from shared.contracts.streams import StreamKeys
from shared.runtime.commands import execute, fingerprint
from shared.runtime.keys.crypto import MasterKey, new_key
from shared.runtime.keys.store import SCHEMA as KEYSTORE_SCHEMA
from shared.runtime.keys.store import KeyStore
from shared.runtime.log.client import EventLog

from event_factories import PRINCIPAL as PRINCIPAL_ACTOR
from event_factories import RECTORAT as RECTORAT_ACTOR
from event_factories import college_avis, registered

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
REASON = "Demande de la famille, courrier RGPD-2027-014"  # kept in clear in the log: never personal data

# The student's personal data, each value carrying one distinctive ASCII word (TRACES) so a search
# finds it whatever the encoding (UTF-8, JSON escapes, HTML entities) or case.
IDENTITY = {"last_name": "Zyrkowska", "first_name": "Philomène", "class_name": "3e Xanthippe"}
REFERENT = {"user_id": "referent-042", "name": "Ottokar Quernheim", "email": "ovrzalek@ac-paris.fr"}
NEW_REFERENT = {"user_id": "referent-043", "name": "Gwendal Traoulen", "email": "gtraoulen@ac-paris.fr"}
COMMENT = "Passionnée de marqueterie, très motivée."
CANCEL_REASON = "Grève des transports à Quimperlé"
ADVICE = "Visiter l'atelier de dinanderie avant la rentrée."
WITHDRAWAL = "Déménagement prévu à Tombouctou"
REINSTATEMENT = "Retour anticipé de Vladivostok"
LETTER = {  # every question answered, so the letter can be marked ready (and the lycée's view holds it too)
    "pourquoi": "J'ai découvert la gravelotte au salon.", "recherches": "Le CDI et l'ONISEP.",
    "metier": "Conseiller et vendre.", "qualites": "Patiente.", "trajet": "Métro depuis Pantruche.",
    "questions": "Les stages ?",
}
TRACES = (
    "zyrkowska", "philom", "xanthippe", "quernheim", "ovrzalek", "traoulen",
    "marqueterie", "quimperl", "dinanderie", "tombouctou", "vladivostok", "gravelotte", "pantruche",
)


def traces_in(text: str | bytes) -> set[str]:
    """The distinctive words found in `text`, whatever their case."""
    lowered = text.lower()
    return {t for t in TRACES if (t.encode() if isinstance(lowered, bytes) else t) in lowered}


def random_ine(letters: str) -> str:
    return f"{secrets.randbelow(10**9):09d}{letters}"


# --- the world: three services, their views and the key store ------------------------------------------


@dataclass
class World(InProcessServices):
    printed: list[str] = field(default_factory=list)  # everything the `passpro` command printed

    def passpro_command(self, capsys, *args: str) -> tuple[int, str]:
        """Run `passpro ...` in process; its exit code and everything it printed (kept, to be searched)."""
        code, out, err = self.command(capsys, *args)
        self.printed.append(out + err)
        return code, out + err

    def wait_until_applied(self, stream: str, entry_id: str, timeout: float = 20.0) -> None:
        """Until every service's view has read `stream` up to `entry_id`."""
        self.wait_for_positions({stream: entry_id}, timeout)


@pytest.fixture(params=["sqlite", "postgres"])
def world(request, redis_url: str, academie: str, tmp_path: Path, monkeypatch, caplog) -> Iterator[World]:
    caplog.set_level(logging.DEBUG)  # from the very start: every record of the test is searched
    databases = databases_of(request, tmp_path, request.param)
    redis = redis_sync.Redis.from_url(redis_url)
    passpro = Passpro(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=redis)
    set_environment(monkeypatch, passpro, databases, tmp_path, CAMPAIGN)

    migrate_all()
    asyncio.run(open_campaign(service_settings("scoring"), CAMPAIGN, 2500, None))
    world = World(passpro, databases)
    world.start()
    try:
        yield world
    finally:
        world.stop()
        passpro.redis.close()
        if request.param == "postgres":
            engine = create_engine(databases["registration"][0])
            with engine.begin() as conn:
                for name in SERVICES:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{databases[name][1]}" CASCADE'))
            engine.dispose()


# --- the student ------------------------------------------------------------------------------------------


def journey(w: World, ine: str) -> str:
    """Every event that carries personal data, through the services' APIs; the last write's position."""
    principal, staff, proviseur = ("principal", COLLEGE), ("lycee_staff", LYCEE), ("proviseur", LYCEE)
    voeu = {"lycee_uai": LYCEE, "formation_code": FORMATION}
    w.write("registration", "/api/students",
            {"student_ine": ine, "college_uai": COLLEGE, **IDENTITY, "referent": REFERENT}, *principal)
    w.write("registration", f"/api/students/{ine}/referent", {"referent": NEW_REFERENT}, *principal)
    w.write("registration", f"/api/students/{ine}/college-avis",
            {"college_uai": COLLEGE, "avis": "favorable", "comment": COMMENT}, *principal)
    w.write("registration", f"/api/students/{ine}/interviews", schedule_body(), *principal)
    w.write("evaluation", f"/api/students/{ine}/interviews/cancel", {**voeu, "reason": CANCEL_REASON}, *staff)
    interview_id = w.write("registration", f"/api/students/{ine}/interviews", schedule_body(), *principal)[
        "event"]["payload"]["interview_id"]
    student = {"Authorization": f"Bearer {w.passpro.token('eleve', COLLEGE, user='eleve-0042', ine=ine)}"}
    for path, body in ((f"/api/me/interviews/{interview_id}/preparation",
                        {"itinerary_ready": True, "letter_printed": True, "materials_ready": False}),
                       ("/api/me/letters", {**voeu, "answers": LETTER, "ready": True})):
        answer = w.clients["registration"].post(path, json=body, headers=student)
        assert answer.status_code == 201, answer.text
    held = {**voeu, "held_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "report": {"motivation": "satisfaisante", "chances_of_success": "fragile", "advice": ADVICE}}
    w.write("evaluation", f"/api/students/{ine}/interviews/held", held, *staff)
    w.write("evaluation", f"/api/students/{ine}/lycee-avis", {**voeu, "avis": "favorable"}, *proviseur)
    w.write("registration", f"/api/students/{ine}/withdrawal", {"reason": WITHDRAWAL}, *principal)
    done = w.write("registration", f"/api/students/{ine}/reinstatement", {"reason": REINSTATEMENT}, *principal)
    return done["positions"]["service"]


def bystander(w: World, ine: str) -> None:
    """Another student of the same collège, who keeps their name."""
    w.write("registration", "/api/students", {
        "student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa",
        "class_name": "3e B", "referent": REFERENT | {"name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    }, "principal", COLLEGE)


# --- where personal data could be left --------------------------------------------------------------------


def redis_leftovers(w: World) -> dict[str, set[str]]:
    """Every key of the académie, whatever its type, every entry, field, member and value: the traces found."""
    found: dict[str, set[str]] = {}
    client = w.redis
    for key in client.scan_iter(match=f"passpro:{{{w.passpro.academie}}}*", count=1000):
        kind = client.type(key).decode()
        if kind == "stream":
            items = [b"".join([entry_id, *(k + b"=" + v for k, v in fields.items())])
                     for entry_id, fields in client.xrange(key)]
        elif kind == "hash":
            items = [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == "string":
            items = [client.get(key)]
        elif kind == "set":
            items = list(client.smembers(key))
        elif kind == "list":
            items = client.lrange(key, 0, -1)
        elif kind == "zset":
            items = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        else:
            raise AssertionError(f"a key of an unexpected type {kind}: {key!r}")
        for item in [key, *items]:
            if traces := traces_in(item):
                found.setdefault(key.decode(), set()).update(traces)
    return found


def table_leftovers(w: World, name: str) -> dict[str, set[str]]:
    """Every table of one database, every row, every column: the traces found, by table.column."""
    _, schema = w.databases[name]
    found: dict[str, set[str]] = {}
    with w.engine(name) as engine, engine.connect() as conn:
        for table_name in inspect(engine).get_table_names(schema=schema):
            table = Table(table_name, MetaData(), autoload_with=conn, schema=schema)
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if value is not None and (traces := traces_in(str(value))):
                        found.setdefault(f"{name}.{table_name}.{column}", set()).update(traces)
    return found


def database_leftovers(w: World) -> dict[str, set[str]]:
    return {k: v for name in (*SERVICES, "keystore") for k, v in table_leftovers(w, name).items()}


def sqlite_files(w: World) -> dict[str, bytes]:
    """The raw bytes of every SQLite file, write-ahead logs included, once checkpointed."""
    found: dict[str, bytes] = {}
    for url, _ in w.databases.values():
        path = Path(url.removeprefix("sqlite:///"))
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        found |= {file.name: file.read_bytes() for file in sorted(path.parent.glob(path.name + "*"))}
    return found


def sqlite_file_leftovers(w: World) -> dict[str, set[str]]:
    return {name: traces for name, raw in sqlite_files(w).items() if (traces := traces_in(raw))}


def key_rows(w: World, ines: list[str]) -> list[tuple]:
    """The key store's rows of these students: (campaign, INE, wrapped key, created, destroyed)."""
    with w.engine("keystore") as engine, engine.connect() as conn:
        table = Table("student_keys", MetaData(), autoload_with=conn, schema=w.databases["keystore"][1])
        return sorted(tuple(row) for row in conn.execute(select(table).where(table.c.ine.in_(ines))))


# --- the test ---------------------------------------------------------------------------------------------


def test_forget_leaves_nothing_of_the_student_and_keeps_the_bonus(world: World, capsys, caplog):
    w, ine, other, unknown = world, random_ine("ZE"), random_ine("MB"), random_ine("UN")
    try:
        _the_erasure(w, capsys, caplog, ine, other, unknown)
    finally:
        if w.databases["keystore"][1]:  # the shared PostgreSQL key store: leave none of this test's rows
            with w.engine("keystore") as engine, engine.begin() as conn:
                table = Table("student_keys", MetaData(), autoload_with=conn, schema=KEYSTORE_SCHEMA)
                conn.execute(delete(table).where(table.c.ine.in_([ine, other, unknown])))


def _the_erasure(w: World, capsys, caplog, ine: str, other: str, unknown: str) -> None:
    bystander(w, other)
    last = journey(w, ine)
    w.read("registration", "/api/students", "principal", COLLEGE, min_position=last)
    w.read("evaluation", "/api/interviews", "lycee_staff", LYCEE, min_position=last)
    w.read("scoring", f"/api/bonuses/{ine}", "rectorat", None, min_position=last)

    # The searches find what is there: the whole history reads in clear, the views hold the current
    # fields (not the first referent nor the withdrawal's reason, replaced since); the log only sealed.
    history = w.read("scoring", f"/api/audit/students/{ine}", "rectorat", None).text
    assert traces_in(history) == set(TRACES)
    assert set().union(*database_leftovers(w).values()) == set(TRACES) - {"quernheim", "ovrzalek", "tombouctou"}
    assert redis_leftovers(w) == {}
    if w.databases["keystore"][1] is None:
        assert sqlite_file_leftovers(w)

    # Bad requests: a French refusal, nothing appended, no key destroyed.
    keys_before, log_before = key_rows(w, [ine, other]), w.passpro.snapshot()
    for args, code, words in [
        (["forget", "12345", "--reason", REASON], 2, "INE invalide"),
        (["forget", ine, "--reason", ""], 2, "motif invalide"),
        (["forget", ine, "--reason", "   "], 2, "motif invalide"),
        (["forget", ine, "--reason", "x" * 501], 2, "500 caractères"),
        (["forget", ine, "--reason", "Demande\x01de la famille"], 2, "caractères de contrôle"),
        (["forget", ine, "--reason", "Demande de Philomène"], 2, "ni le prénom"),
        (["forget", ine, "--reason", REASON, "--campaign", "27"], 2, "Campagne invalide"),
        (["forget", unknown, "--reason", REASON], 1, "aucun élève"),
        (["forget", unknown, "--reason", REASON, "--campaign", CAMPAIGN], 1, "aucun élève"),
    ]:
        exit_code, said = w.passpro_command(capsys, *args)
        assert (exit_code, words in said, is_french(said.split(" : ", 1)[-1])) == (code, True, True), (args, said)
        assert w.passpro.snapshot() == log_before, args
        assert key_rows(w, [ine, other]) == keys_before, args

    # The erasure.
    exit_code, said = w.passpro_command(
        capsys, "forget", f" {ine.lower()} ", "--reason", REASON, "--user", "dpo-rectorat"
    )
    assert exit_code == 0, said
    assert f"Élève {ine} : données personnelles effacées" in said
    assert f"campagne {CAMPAIGN} : effacement inscrit au journal" in said and "clé de l'élève détruite" in said
    assert "bonus et la piste d'audit sont conservés" in said and ERASED in said
    scoring_stream = w.keys.service(CAMPAIGN, "scoring")
    [(erasure_id, erasure)] = w.redis.xrange(scoring_stream)
    assert erasure[b"event_type"] == b"StudentForgotten" and erasure[b"student_ine"] == ine.encode()
    assert json.loads(erasure[b"actor"]) == {"user_id": "dpo-rectorat", "role": "rectorat", "uai": None}
    w.wait_until_applied(scoring_stream, erasure_id.decode())

    # Nothing left in Redis (the scan reads what is in clear: the erasure's reason is found)...
    assert redis_leftovers(w) == {}
    assert any(b"RGPD-2027-014" in v for v in erasure.values())
    # ...nor in any table of any database, the key store's included.
    assert database_leftovers(w) == {}
    assert [(campaign, key, destroyed is not None) for campaign, _, key, _, destroyed in key_rows(w, [ine])] == [
        (CAMPAIGN, None, True)
    ]

    # Answers and pages read "[effacé]" where the fields were; the bonus stands.
    students = w.read("registration", "/api/students", "rectorat", None).json()["items"]
    student = next(s for s in students if s["ine"] == ine)
    assert {k: student[k] for k in ("last_name", "first_name", "class_name", "college_comment")} == dict.fromkeys(
        ("last_name", "first_name", "class_name", "college_comment"), ERASED)
    assert (student["referent"]["name"], student["referent"]["email"]) == (ERASED, ERASED)
    assert student["total_bonus_points"] == 2500 and student["college_avis"] == "favorable"
    assert next(s for s in students if s["ine"] == other)["last_name"] == "Martin"  # only the one student
    interviews = [i for i in w.read("evaluation", "/api/interviews", "lycee_staff", LYCEE).json()["items"]
                  if i["ine"] == ine]
    assert {(i["status"], i["last_name"], i["college_comment"]) for i in interviews} == {
        ("cancelled", ERASED, ERASED), ("held", ERASED, ERASED)}
    assert next(i for i in interviews if i["status"] == "held")["report"]["advice"] == ERASED
    audit = w.read("scoring", f"/api/audit/students/{ine}", "rectorat", None).json()
    assert audit["total_bonus_points"] == 2500
    assert audit["timeline"][-1]["event_type"] == "StudentForgotten"
    registered_payload = audit["timeline"][0]["payload"]
    assert (registered_payload["last_name"], registered_payload["referent"]["email"]) == (ERASED, ERASED)
    assert w.read("scoring", f"/api/bonuses/{ine}", "rectorat", None).json()["total_bonus_points"] == 2500
    export = w.read("scoring", "/api/exports/affelnet.csv", "rectorat", None).text
    assert f"{ine};{LYCEE};{FORMATION};2500" in export.splitlines()
    shown = {
        "registration /api/students": json.dumps(students, ensure_ascii=False),
        "evaluation /api/interviews": w.read("evaluation", "/api/interviews", "rectorat", None).text,
        "scoring /api/audit/students": json.dumps(audit, ensure_ascii=False),
        "scoring export": export,
        "scoring /eleves/{ine}": w.page("scoring", f"/eleves/{ine}", "rectorat", None),
        "registration /": w.page("registration", "/", "principal", COLLEGE),
        "registration /eleves/{ine}": w.page("registration", f"/eleves/{ine}", "principal", COLLEGE),
        "registration /eleves/{ine}/lettres": w.page("registration", f"/eleves/{ine}/lettres", "principal", COLLEGE),
        "evaluation /": w.page("evaluation", "/", "lycee_staff", LYCEE),
        "evaluation /eleves/{ine}/{formation}": w.page(
            "evaluation", f"/eleves/{ine}/{FORMATION}", "lycee_staff", LYCEE
        ),
    }
    assert {where: traces_in(body) for where, body in shown.items() if traces_in(body)} == {}
    for where in ("scoring /eleves/{ine}", "registration /eleves/{ine}", "evaluation /eleves/{ine}/{formation}"):
        assert ERASED in shown[where], where
    assert "martin" in shown["registration /"].lower()  # the other student keeps their name

    # A further write about the student is refused and stores nothing.
    before = w.passpro.snapshot()
    for service, path, body, role, uai in [
        ("registration", f"/api/students/{ine}/college-avis",
         {"college_uai": COLLEGE, "avis": "reserve", "comment": "Nouveau commentaire"}, "principal", COLLEGE),
        ("registration", f"/api/students/{ine}/withdrawal", {"reason": "Abandon"}, "principal", COLLEGE),
        ("evaluation", f"/api/students/{ine}/lycee-avis",
         {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "reserve"}, "proviseur", LYCEE),
    ]:
        refused = w.write(service, path, body, role, uai, status=409)
        assert refused["error"] == "student_erased" and is_french(refused["message"]), refused
    assert w.passpro.snapshot() == before

    # The audit still verifies, and a second run changes nothing.
    exit_code, said = w.passpro_command(capsys, "audit", "verify")
    assert exit_code == 0, said
    scoring_length, student_length = w.redis.xlen(scoring_stream), w.redis.xlen(w.keys.student(CAMPAIGN, ine))
    exit_code, said = w.passpro_command(capsys, "forget", ine, "--reason", REASON)
    assert exit_code == 0 and "déjà effacé" in said and "effacement déjà inscrit au journal" in said, said
    assert w.redis.xlen(scoring_stream) == scoring_length
    assert w.redis.xlen(w.keys.student(CAMPAIGN, ine)) == student_length

    # With the services stopped, the SQLite files themselves (write-ahead logs checkpointed) hold none.
    w.stop()
    if w.databases["keystore"][1] is None:
        assert sqlite_file_leftovers(w) == {}
        # The destroyed key is not left in the key store's file either (secure_delete, then the checkpoint).
        [wrapped] = [key for _, student, key, _, _ in keys_before if student == ine]
        assert [name for name, raw in sqlite_files(w).items() if wrapped.encode() in raw] == []
    # Nor does any log record of the whole test, nor anything the command printed.
    formatter = logging.Formatter()
    logged = "\n".join(formatter.format(r) for phase in ("setup", "call") for r in caplog.get_records(phase))
    assert logged and traces_in(logged) == set()
    assert traces_in("\n".join(w.printed)) == set()


# --- the order of the two steps: an erasure stopped half-way, an erasure in the middle of a write -----------


@contextlib.asynccontextmanager
async def small_log(redis_url: str, academie: str, tmp_path: Path, *, log_class=EventLog, keystore_class=KeyStore):
    """A log with campaign 2027 open and one student registered (the yielded INE), on a SQLite key store."""
    keystore = keystore_class.open(f"sqlite:///{tmp_path / 'keys.sqlite3'}", MasterKey(new_key()))
    redis = Redis.from_url(redis_url)
    log = log_class(redis, StreamKeys(academie), keystore)
    ine = random_ine("RC")
    try:
        await write(log, None, RECTORAT_ACTOR, CampaignOpened(bonus_points=2500), "rectorat")
        await write(log, ine, PRINCIPAL_ACTOR, registered(), "registration")
        yield log, keystore, ine
    finally:
        await redis.aclose()
        keystore.close()


async def write(log: EventLog, ine: str | None, actor, payload, service: str):
    return await execute(
        log, service=service, campaign=CAMPAIGN, ine=ine, actor=actor, event_id=uuid.uuid4(),
        request_fingerprint=fingerprint("test", {"n": uuid.uuid4().hex}),
        decide=lambda _file, _campaign, _now: payload,
    )


class CrashingBeforeTheKeyIsDestroyed(KeyStore):
    crashed = False

    def destroy(self, campaign: str, ine: str) -> bool:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("the process stops here")
        return super().destroy(campaign, ine)


async def test_an_erasure_stopped_before_its_key_is_destroyed_is_finished_by_running_it_again(
    redis_url, academie, tmp_path
):
    async with small_log(redis_url, academie, tmp_path, keystore_class=CrashingBeforeTheKeyIsDestroyed) as (
        log, keystore, ine
    ):
        with pytest.raises(RuntimeError):
            await forget(log, keystore, None, ine, REASON, RECTORAT_ACTOR)
        assert not keystore.is_destroyed(CAMPAIGN, ine)  # recorded, but the key is still there
        history = await log.read_student(CAMPAIGN, ine)
        assert [h.event.event_type for h in history] == ["StudentRegistered", "StudentForgotten"]

        done = await forget(log, keystore, None, ine, REASON, RECTORAT_ACTOR)
        [erasure] = done.erasures
        assert (erasure.recorded_now, erasure.key_destroyed_now, erasure.position) == (False, True, history[1].entry_id)
        assert keystore.is_destroyed(CAMPAIGN, ine)
        history = await log.read_student(CAMPAIGN, ine)
        assert [h.event.event_type for h in history] == ["StudentRegistered", "StudentForgotten"]
        assert history[0].event.payload.last_name == ERASED


class ErasedJustBeforeAppend(EventLog):
    """A log on which the student is erased right after a decision was taken on their history."""

    erase: str | None = None

    async def append(self, event, service, expected_version, fingerprint):
        if self.erase and event.student_ine == self.erase:
            ine, self.erase = self.erase, None
            plain = EventLog(self.redis, self.keys, self.keystore)
            await forget(plain, self.keystore, None, ine, REASON, RECTORAT_ACTOR)
        return await super().append(event, service, expected_version, fingerprint)


async def test_an_erasure_between_decision_and_append_is_refused_as_the_rule_refuses(redis_url, academie, tmp_path):
    async with small_log(redis_url, academie, tmp_path, log_class=ErasedJustBeforeAppend) as (log, _, ine):
        log.erase = ine
        with pytest.raises(RuleViolation) as refused:
            await write(log, ine, PRINCIPAL_ACTOR, college_avis(), "registration")
        assert (refused.value.code, refused.value.status) == ("student_erased", 409)
        history = await log.read_student(CAMPAIGN, ine)
        assert [h.event.event_type for h in history] == ["StudentRegistered", "StudentForgotten"]
        assert history[0].event.payload.last_name == ERASED
