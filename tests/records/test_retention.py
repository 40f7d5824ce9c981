"""Retention (issue 5, item 3): `passpro campaign archive`, `purge` and `import`.

A small campaign runs through the three services in process (TestClient, their consumers running) on real
Redis (an académie of the test's own) and real databases — the views in SQLite files or PostgreSQL
schemas, the key store beside them. It is checkpointed and archived; its purge is refused for every
reason there is, with nothing deleted; then it is purged, leaving nothing of its students anywhere but
the rectorat stream whole; then the archive is imported into a fresh académie, where `passpro audit
verify` passes and the bonuses recomputed from the imported log are the ones computed before.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import secrets
import time
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from sqlalchemy import Engine, MetaData, Table, create_engine, delete, inspect, select, text

from cli_world import databases_of, set_environment
from event_factories import CAMPAIGN as CAMPAIGN_TO_COME
from services_world import Passpro
from in_process import SERVICES, InProcessServices
from matrix import COLLEGE, FORMATION, LYCEE, is_french, schedule_body
from services.cli import campaign as campaign_cli
from services.cli.common import migrate_all, open_campaign, service_settings
from services.scoring.app import MIGRATIONS as SCORING_MIGRATIONS
from services.records.archive import ArchiveError, open_archive, seal_archive, split_archive
from services.records.retention import closing_refusal
from shared.contracts.streams import StreamKeys
from shared.domain.student_file import CampaignFile
from shared.runtime.keys.crypto import MasterKey, new_key
from shared.runtime.projection.dead_letters import DeadLetters
from shared.runtime.keys.store import SCHEMA as KEYSTORE_SCHEMA
from shared.runtime.migrations import upgrade

CAMPAIGN, OTHER_CAMPAIGN = CAMPAIGN_TO_COME, str(int(CAMPAIGN_TO_COME) + 1)
NONE = str(int(CAMPAIGN_TO_COME) + 4)  # a campaign nobody opened
REFERENT = {"user_id": "referent-077", "name": "Ysolde Kerbrat", "email": "ykerbrat@ac-paris.fr"}
COMMENT = "Passionnée de ferronnerie d'art."
LETTER = {  # the student's guided letter, every question answered (marked ready: the lycée's view holds it too)
    "pourquoi": "Pour la chaudronnerie.", "recherches": "Le CDI.", "metier": "Souder.", "qualites": "Soigneuse.",
    "trajet": "Le bus 91.", "questions": "Les stages ?",
}
TRACES = ("kerbrat", "ferronnerie", "chaudronnerie")  # with each student's last name, what must be gone after the purge


def random_ine(letters: str) -> str:
    return f"{secrets.randbelow(10**9):09d}{letters}"


# --- the world ----------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class World(InProcessServices):
    tmp: Path
    env: dict[str, str]
    students: dict[str, str] = field(default_factory=dict)  # INE -> last name, campaign 2027
    survivor: str = ""  # a student of 2028, which the purge of 2027 must not touch
    closes_at: datetime | None = None
    cleanups: list = field(default_factory=list)

    def at(self, days_after_closing: float, monkeypatch) -> None:
        """Set the purge's clock to some days after the campaign closed."""
        moment = self.closes_at + timedelta(days=days_after_closing)
        monkeypatch.setattr(campaign_cli, "clock", lambda: moment)



    def wait_for_views(self, timeout: float = 30.0) -> None:
        """Until every view has read every stream it follows up to its last entry."""
        heads = {}
        for key in [self.keys.rectorat, *self.keys.campaign_streams(CAMPAIGN), *self.keys.campaign_streams(OTHER_CAMPAIGN)]:
            last = self.redis.xrevrange(key, count=1)
            if last:
                heads[key] = last[0][0].decode()
        self.wait_for_positions(heads, timeout)

    def tables(self, name: str) -> dict[str, list[tuple]]:
        """Every row of every table of one database (the key store: only this test's students)."""
        _, schema = self.databases[name]
        found = {}
        with self.engine(name) as engine, engine.connect() as conn:
            for table_name in sorted(inspect(engine).get_table_names(schema=schema)):
                table = Table(table_name, MetaData(), autoload_with=conn, schema=schema)
                query = select(table)
                if name == "keystore":
                    query = query.where(table.c.ine.in_([*self.students, self.survivor]))
                found[table_name] = sorted(tuple(str(v) for v in row) for row in conn.execute(query))
        return found

    def state(self) -> tuple:
        """Every key of the académie with its content, and every row of every database: equal states mean
        that nothing was changed."""
        content = {}
        for raw in self.redis.scan_iter(match=f"passpro:{{{self.passpro.academie}}}*", count=1000):
            content[raw] = dump(self.redis, raw)
        return content, {name: self.tables(name) for name in self.databases}

    def bonuses(self, engine: Engine, campaign: str = CAMPAIGN) -> tuple[list, list]:
        with engine.connect() as conn:
            totals = conn.execute(text(
                "SELECT ine, college_uai, college_avis, withdrawn, total_bonus_points FROM student_totals "
                "WHERE campaign = :c ORDER BY ine"), {"c": campaign}).all()
            voeux = conn.execute(text(
                "SELECT ine, lycee_uai, formation_code, lycee_avis, bonus_points, interview_held FROM voeux "
                "WHERE campaign = :c ORDER BY ine, lycee_uai, formation_code"), {"c": campaign}).all()
        return [tuple(r) for r in totals], [tuple(r) for r in voeux]


def dump(client: redis_sync.Redis, key: bytes) -> tuple:
    kind = client.type(key).decode()
    if kind == "stream":
        return kind, tuple((i, tuple(f.items())) for i, f in client.xrange(key))
    if kind == "hash":
        return kind, tuple(sorted(client.hgetall(key).items()))
    if kind == "zset":
        return kind, tuple(client.zrange(key, 0, -1, withscores=True))
    if kind == "set":
        return kind, tuple(sorted(client.smembers(key)))
    if kind == "list":
        return kind, tuple(client.lrange(key, 0, -1))
    return kind, client.get(key)


def traces_in(value: str | bytes, words: list[str]) -> set[str]:
    lowered = value.lower()
    return {w for w in words if (w.encode() if isinstance(lowered, bytes) else w) in lowered}


@pytest.fixture(params=["sqlite", "postgres"])
def world(request, redis_url: str, academie: str, tmp_path: Path, monkeypatch) -> Iterator[World]:
    yield from make_world(request, redis_url, academie, tmp_path, monkeypatch, request.param)


@pytest.fixture
def sqlite_world(request, redis_url: str, academie: str, tmp_path: Path, monkeypatch) -> Iterator[World]:
    yield from make_world(request, redis_url, academie, tmp_path, monkeypatch, "sqlite")


def make_world(request, redis_url: str, academie: str, tmp_path: Path, monkeypatch, kind: str) -> Iterator[World]:
    live = tmp_path / "live"
    live.mkdir()
    databases = databases_of(request, live, kind)
    passpro = Passpro(redis_url=redis_url, academie=academie, data_dir=live,
                      redis=redis_sync.Redis.from_url(redis_url))
    env = set_environment(
        monkeypatch, passpro, databases, live, CAMPAIGN,
        PASSPRO_CHECKPOINT_KEY=secrets.token_urlsafe(40),
        PASSPRO_CHECKPOINT_INTERVAL_SECONDS="0",  # checkpoints when the test says so
    )
    migrate_all()
    w = World(passpro=passpro, tmp=tmp_path, databases=databases, env=env)
    try:
        yield w
    finally:
        w.stop()
        for cleanup in w.cleanups:
            cleanup()
        passpro.redis.close()
        if kind == "postgres":
            engine = create_engine(databases["registration"][0])
            with engine.begin() as conn:
                for name in SERVICES:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{databases[name][1]}" CASCADE'))
            engine.dispose()
            with w.engine("keystore") as ks, ks.begin() as conn:
                table = Table("student_keys", MetaData(), autoload_with=conn, schema=KEYSTORE_SCHEMA)
                conn.execute(delete(table).where(table.c.ine.in_([*w.students, w.survivor])))


def run_campaign(w: World, students: int = 3) -> None:
    """Campaign 2027 (closing tomorrow) and 2028 open; students of 2027 through every step, one of 2028;
    the views caught up, the log checkpointed."""
    w.closes_at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    asyncio.run(open_campaign(service_settings("scoring"), CAMPAIGN, 2500, w.closes_at))
    asyncio.run(open_campaign(service_settings("scoring"), OTHER_CAMPAIGN, 2000, None))
    w.start()
    principal, staff, proviseur = ("principal", COLLEGE), ("lycee_staff", LYCEE), ("proviseur", LYCEE)
    voeu = {"lycee_uai": LYCEE, "formation_code": FORMATION}
    names = ["Zavatteri", "Quintrec", "Vasseliot", "Brocéliande", "Ormesson"]
    for n in range(students):
        ine = random_ine("RT")
        w.students[ine] = names[n % len(names)]
        w.write("registration", "/api/students", {
            "student_ine": ine, "college_uai": COLLEGE, "last_name": w.students[ine], "first_name": "Élise",
            "class_name": "3e C", "referent": REFERENT}, *principal)
        w.write("registration", f"/api/students/{ine}/college-avis",
                {"college_uai": COLLEGE, "avis": "favorable", "comment": COMMENT}, *principal)
        interview_id = w.write("registration", f"/api/students/{ine}/interviews", schedule_body(), *principal)[
            "event"]["payload"]["interview_id"]
        student = {"Authorization": f"Bearer {w.passpro.token('eleve', COLLEGE, user=f'eleve-{n}', ine=ine)}"}
        for path, body in (("/api/me/letters", {**voeu, "answers": LETTER, "ready": True}),
                           (f"/api/me/interviews/{interview_id}/preparation",
                            {"itinerary_ready": True, "letter_printed": True, "materials_ready": True})):
            answer = w.clients["registration"].post(path, json=body, headers=student)
            assert answer.status_code == 201, answer.text
        if n % 3 != 2:  # the third student's interview is still to come
            held = {**voeu, "held_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                    "report": {"motivation": "satisfaisante", "chances_of_success": "fragile",
                               "advice": "Visiter l'atelier."}}
            w.write("evaluation", f"/api/students/{ine}/interviews/held", held, *staff)
            w.write("evaluation", f"/api/students/{ine}/lycee-avis",
                    {**voeu, "avis": "favorable" if n % 3 == 0 else "reserve"}, *proviseur)
    w.survivor = random_ine("SV")
    w.write("registration", "/api/students", {
        "student_ine": w.survivor, "campaign": OTHER_CAMPAIGN, "college_uai": COLLEGE, "last_name": "Survivant",
        "first_name": "Paul", "class_name": "3e D",
        "referent": {"user_id": "referent-078", "name": "Claire Dupont", "email": "cdupont@ac-paris.fr"}}, *principal)
    w.wait_for_views()
    # The rectorat reads the lists (their reads are logged: access logs to archive and purge too).
    for service, path in (("registration", "/api/students"), ("evaluation", "/api/interviews")):
        answer = w.clients[service].get(path, headers=w.passpro.auth("rectorat", None))
        assert answer.status_code == 200, answer.text
    w.stop()


def checkpoint(w: World, capsys) -> None:
    code, out, err = w.command(capsys, "audit", "checkpoint")
    assert code == 0, out + err
    assert "REFUSÉ" not in out


def letters(w: World) -> tuple[str, str]:
    """A dead letter of a 2027 entry (the purge takes it) and one of 2028 (it stays)."""
    async def send() -> None:
        redis = Redis.from_url(w.env["PASSPRO_REDIS_URL"])
        try:
            dead = DeadLetters(redis, w.keys)
            for year in (CAMPAIGN, OTHER_CAMPAIGN):
                stream = w.keys.service(year, "registration")
                entry_id, fields = (await redis.xrange(stream, count=1))[0]
                fields = {k.decode(): v.decode() for k, v in fields.items()}
                await dead.send("registration-students", stream, entry_id.decode(), fields, "panne simulée", 3)
        finally:
            await redis.aclose()

    asyncio.run(send())
    return w.keys.service(CAMPAIGN, "registration"), w.keys.service(OTHER_CAMPAIGN, "registration")


def error_message(err: str) -> str:
    """The message of `passpro campaign X : message`, for the French check."""
    return err.split(" : ", 1)[1] if " : " in err else err


def assert_refused(w: World, capsys, before: tuple, *args: str, code: int, says: str) -> str:
    got, out, err = w.command(capsys, *args)
    assert got == code, out + err
    assert says in err, err
    assert is_french(error_message(err)), err
    assert w.state() == before, "a refused command changed something"
    return err


# --- the whole story ----------------------------------------------------------------------------------------


def test_archive_purge_and_import_of_a_campaign(world: World, capsys, monkeypatch):
    w = world
    run_campaign(w)
    for name in ("registration", "evaluation"):  # the letters are in both views (the purge must take them)
        assert any(traces_in(repr(row), ["chaudronnerie"]) for rows in w.tables(name).values() for row in rows), name
    checkpoint(w, capsys)
    purged_letter_stream, kept_letter_stream = letters(w)
    with w.engine("scoring") as engine:
        bonuses_before = w.bonuses(engine)
    assert len(bonuses_before[0]) == 3 and any(total for *_, total in bonuses_before[0])
    rectorat_before = dump(w.redis, w.keys.rectorat.encode())
    archive = w.tmp / "archives" / f"campagne-{CAMPAIGN}.passpro"
    archive.parent.mkdir()

    # No archive yet: refused, whatever the date.
    w.at(400, monkeypatch)
    before = w.state()
    assert_refused(w, capsys, before, "campaign", "purge", CAMPAIGN, code=1, says="aucune archive")

    started = time.monotonic()
    code, out, err = w.command(capsys, "campaign", "archive", CAMPAIGN, "--out", str(archive), "--user", "dsden-archives")
    took = time.monotonic() - started
    assert code == 0, out + err
    assert "SHA-256" in out and str(archive) in out
    size = archive.stat().st_size
    with capsys.disabled():  # the figures for the note (pytest -s)
        print(f"\narchive of {len(w.students)} students: {size} bytes in {took:.2f} s", end=" ")
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    raw = archive.read_bytes()
    assert not traces_in(raw, [*TRACES, *(n.lower() for n in w.students.values())])  # encrypted
    header = split_archive(raw).header
    assert (header["academie"], header["campaign"], header["version"]) == (w.passpro.academie, CAMPAIGN, 1)
    assert header["counts"]["student_streams"] == 3 and header["counts"]["checkpoints"] == 2

    # Before the appeal period has run out: refused.
    before = w.state()
    w.at(30, monkeypatch)
    assert_refused(w, capsys, before, "campaign", "purge", CAMPAIGN, code=1, says="délai de recours")
    w.at(-1, monkeypatch)
    assert_refused(w, capsys, before, "campaign", "purge", CAMPAIGN, code=1, says="délai de recours")

    w.at(62, monkeypatch)
    # The archive changed since it was made, or is gone: refused.
    tampered = bytearray(raw)
    tampered[-10] ^= 0x01
    archive.write_bytes(bytes(tampered))
    assert_refused(w, capsys, before, "campaign", "purge", CAMPAIGN, code=1, says="modifiée")
    archive.rename(archive.with_suffix(".moved"))
    assert_refused(w, capsys, before, "campaign", "purge", CAMPAIGN, code=1, says="n'existe plus")
    archive.with_suffix(".moved").rename(archive)
    archive.write_bytes(raw)
    # A campaign that never closes is never purged; an unknown one neither.
    assert_refused(w, capsys, before, "campaign", "purge", OTHER_CAMPAIGN, code=1, says="pas de date de clôture")
    assert_refused(w, capsys, before, "campaign", "purge", NONE, code=1, says=f"aucune campagne {NONE}")

    # Now it may be purged.
    code, out, err = w.command(capsys, "campaign", "purge", CAMPAIGN, "--user", "dsden-archives")
    assert code == 0, out + err
    assert "purgée" in out

    # Nothing of the campaign's students is left: no key of the campaign, no trace in any key or row.
    words = [*TRACES, *(n.lower() for n in w.students.values()), *(i.lower() for i in w.students)]
    assert not list(w.redis.scan_iter(match=f"passpro:{{{w.passpro.academie}}}:{CAMPAIGN}:*"))
    for raw_key in w.redis.scan_iter(match=f"passpro:{{{w.passpro.academie}}}*", count=1000):
        assert not traces_in(repr((raw_key, dump(w.redis, raw_key))), words), raw_key
    for name in w.databases:
        for table_name, rows in w.tables(name).items():
            if table_name in ("campaign_archives", "campaign_purges"):
                continue
            for row in rows:
                assert not traces_in(repr(row), words), (name, table_name, row)
                # No read position nor checkpoint of the campaign's streams either.
                assert not any(cell.startswith(f"{w.keys.prefix}:{CAMPAIGN}:") for cell in row), (name, table_name)
    with w.engine("scoring") as engine:
        assert w.bonuses(engine) == ([], [])
        assert w.bonuses(engine, OTHER_CAMPAIGN)[0]  # 2028 untouched
    # The rectorat stream is whole, the other campaign too, and its dead letter.
    assert dump(w.redis, w.keys.rectorat.encode()) == rectorat_before
    assert w.redis.xlen(w.keys.student(OTHER_CAMPAIGN, w.survivor)) == 1
    streams_with_letters = {f[b"stream"].decode() for _, f in w.redis.xrange(w.keys.dead_letters)}
    assert streams_with_letters == {kept_letter_stream}
    assert not list(w.redis.scan_iter(match=f"{w.keys.dead_letters}:open:*:{CAMPAIGN}:*"))
    assert purged_letter_stream not in repr(w.redis.hgetall(f"{w.keys.dead_letters}:index"))

    # The remaining log still verifies, and says the campaign was purged.
    code, out, err = w.command(capsys, "audit", "verify")
    assert code == 0, out + err
    assert f"campagne {CAMPAIGN} purgée" in out and "dsden-archives" in out
    assert "vides, à dessein" in out

    # Imported into a fresh académie, with its own scoring database and key store: it verifies, shows
    # the students' history, and the bonuses recomputed from its log are those computed before.
    audit_academie = "t" + secrets.token_hex(5)
    request_cleanup(w, audit_academie)
    audit_dir = w.tmp / "audit"
    audit_dir.mkdir()
    audit_db = f"sqlite:///{audit_dir / 'scoring.sqlite3'}"
    upgrade(SCORING_MIGRATIONS, audit_db, None)
    monkeypatch.setenv("PASSPRO_ACADEMIE", audit_academie)
    monkeypatch.setenv("PASSPRO_SCORING_DATABASE_URL", audit_db)
    monkeypatch.delenv("PASSPRO_SCORING_DATABASE_SCHEMA", raising=False)
    monkeypatch.setenv("PASSPRO_KEYSTORE_DATABASE_URL", f"sqlite:///{audit_dir / 'keys.sqlite3'}")
    started = time.monotonic()
    code, out, err = w.command(capsys, "campaign", "import", str(archive), "--academie", audit_academie)
    with capsys.disabled():
        print(f"import in {time.monotonic() - started:.2f} s", end=" ")
    assert code == 0, out + err
    assert "re-signés" in out
    code, out, err = w.command(capsys, "audit", "verify")
    assert code == 0, out + err
    assert "points de contrôle vérifiés : 0" not in out
    code, out, err = w.command(capsys, "rebuild")
    assert code == 0, out + err
    code, out, err = w.command(capsys, "audit", "verify", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] and report["rows_compared"]["student_totals"] == 3 and report["checkpoints_checked"] == 2
    audit_engine = create_engine(audit_db)
    try:
        assert w.bonuses(audit_engine) == bonuses_before
    finally:
        audit_engine.dispose()
    ine = next(iter(w.students))
    code, out, err = w.command(capsys, "audit", "student", ine, "--campaign", CAMPAIGN)
    assert code == 0, out + err
    assert w.students[ine] in out and "Avis du lycée" in out

    # Importing it again there is refused: the campaign exists.
    monkeypatch.setenv("PASSPRO_ACADEMIE", audit_academie)
    code, out, err = w.command(capsys, "campaign", "import", str(archive), "--academie", audit_academie)
    assert code == 1 and "existe déjà" in err, out + err

    # And back into its own académie (whose rectorat stream still holds its opening), after the purge.
    for name, value in w.env.items():
        monkeypatch.setenv(name, value)
    code, out, err = w.command(capsys, "campaign", "import", str(archive))
    assert code == 0, out + err
    code, out, err = w.command(capsys, "audit", "verify")
    assert code == 0, out + err
    assert "réimportée depuis" in out


def request_cleanup(w: World, academie: str) -> None:
    """Delete another académie's keys when the test ends (the `academie` fixture cleans only its own)."""

    def delete_keys() -> None:
        with contextlib.closing(redis_sync.Redis.from_url(w.env["PASSPRO_REDIS_URL"])) as client:
            for key in list(client.scan_iter(match=f"passpro:{{{academie}}}*", count=1000)):
                client.unlink(key)

    w.cleanups.append(delete_keys)


# --- bad input changes nothing ------------------------------------------------------------------------------


def test_bad_input_is_refused_in_french_and_changes_nothing(sqlite_world: World, capsys, monkeypatch):
    w = sqlite_world
    run_campaign(w, students=1)
    checkpoint(w, capsys)
    w.at(62, monkeypatch)
    out_dir = w.tmp / "archives"
    out_dir.mkdir()
    good = out_dir / "bonne.passpro"
    before = w.state()

    assert_refused(w, capsys, before, "campaign", "archive", "20x7", "--out", str(out_dir / "a"), code=2,
                   says="Campagne invalide")
    assert_refused(w, capsys, before, "campaign", "archive", NONE, "--out", str(out_dir / "a"), code=2,
                   says=f"aucune campagne {NONE}")
    assert_refused(w, capsys, before, "campaign", "archive", CAMPAIGN, "--out", str(w.tmp / "absent" / "a"),
                   code=2, says="n'existe pas")
    assert_refused(w, capsys, before, "campaign", "archive", CAMPAIGN, "--out", "/proc/passpro-archive", code=2,
                   says="impossible d'écrire")
    (out_dir / "deja.passpro").write_bytes(b"autre chose")
    assert_refused(w, capsys, before, "campaign", "archive", CAMPAIGN, "--out", str(out_dir / "deja.passpro"),
                   code=2, says="existe déjà")
    assert (out_dir / "deja.passpro").read_bytes() == b"autre chose"
    with monkeypatch.context() as m:
        m.delenv("PASSPRO_CHECKPOINT_KEY")
        assert_refused(w, capsys, before, "campaign", "archive", CAMPAIGN, "--out", str(good), code=2,
                       says="PASSPRO_CHECKPOINT_KEY")
    assert sorted(p.name for p in out_dir.iterdir()) == ["deja.passpro"]

    code, out, err = w.command(capsys, "campaign", "archive", CAMPAIGN, "--out", str(good))
    assert code == 0, out + err
    before = w.state()
    data = good.read_bytes()

    # The import of anything but an intact archive of ours is refused; so is one where the campaign exists.
    assert_refused(w, capsys, before, "campaign", "import", str(out_dir / "absente.passpro"), code=2,
                   says="impossible de lire")
    assert_refused(w, capsys, before, "campaign", "import", str(out_dir), code=2, says="impossible de lire")
    assert_refused(w, capsys, before, "campaign", "import", str(out_dir / "deja.passpro"), code=2,
                   says="n'est pas une archive")
    for n, position in enumerate((30, len(data) // 2, len(data) - 1)):
        broken = bytearray(data)
        broken[position] ^= 0x20
        (out_dir / f"abimee-{n}.passpro").write_bytes(bytes(broken))
        err = assert_refused(w, capsys, before, "campaign", "import", str(out_dir / f"abimee-{n}.passpro"),
                             code=2, says="archive refusée")
    (out_dir / "coupee.passpro").write_bytes(data[: len(data) // 2])
    assert_refused(w, capsys, before, "campaign", "import", str(out_dir / "coupee.passpro"), code=2,
                   says="signature")
    with monkeypatch.context() as m:
        m.setenv("PASSPRO_CHECKPOINT_KEY", secrets.token_urlsafe(40))
        assert_refused(w, capsys, before, "campaign", "import", str(good), code=2, says="signature")
    with monkeypatch.context() as m:
        m.setenv("PASSPRO_MASTER_KEY", b64encode(new_key()).decode())
        assert_refused(w, capsys, before, "campaign", "import", str(good), code=2, says="clé maîtresse")
    assert_refused(w, capsys, before, "campaign", "import", str(good), "--academie", "Paris!", code=2,
                   says="--academie")
    assert_refused(w, capsys, before, "campaign", "import", str(good), code=1, says="existe déjà")
    # Another académie whose rectorat stream has a history of its own cannot take it.
    other = "t" + secrets.token_hex(5)
    request_cleanup(w, other)
    with monkeypatch.context() as m:
        m.setenv("PASSPRO_ACADEMIE", other)
        m.setenv("PASSPRO_KEYSTORE_DATABASE_URL", f"sqlite:///{w.tmp / 'other-keys.sqlite3'}")
        asyncio.run(open_campaign(service_settings("scoring"), str(int(CAMPAIGN) + 3), 2500, None))
        other_before = dump(w.redis, StreamKeys(other).rectorat.encode())
        code, out, err = w.command(capsys, "campaign", "import", str(good), "--academie", other)
        assert code == 1 and "académie vide" in err, out + err
        assert not list(w.redis.scan_iter(match=f"passpro:{{{other}}}:{CAMPAIGN}:*"))
        assert dump(w.redis, StreamKeys(other).rectorat.encode()) == other_before
    assert w.state() == before
    # An audit académie beside it, sharing its key store (the same keys), takes it.
    beside = "t" + secrets.token_hex(5)
    request_cleanup(w, beside)
    code, out, err = w.command(capsys, "campaign", "import", str(good), "--academie", beside)
    assert code == 0, out + err
    ine = next(iter(w.students))  # the whole history, as the archived académie has it (7 entries: 5 and the letter's 2)
    assert w.redis.xlen(StreamKeys(beside).student(CAMPAIGN, ine)) == w.redis.xlen(w.keys.student(CAMPAIGN, ine)) == 7
    w.redis.unlink(*w.redis.scan_iter(match=f"passpro:{{{beside}}}*"))
    with w.engine("scoring") as engine, engine.begin() as conn:
        conn.execute(text("DELETE FROM checkpoints WHERE stream LIKE :p"), {"p": f"passpro:{{{beside}}}%"})
    assert w.state() == before

    # A purge whose archive no longer holds all the campaign (a read was logged since): refused.
    access = w.keys.access_log(CAMPAIGN, next(iter(w.students)))
    w.redis.xadd(access, {"at": datetime.now(UTC).isoformat(), "user_id": "rectorat-x", "role": "rectorat",
                          "uai": "", "service": "scoring", "what": "page élève", "channel": "page"})
    before = w.state()
    assert_refused(w, capsys, before, "campaign", "purge", CAMPAIGN, code=1, says="ne contient pas tout")
    with monkeypatch.context() as m:
        m.setenv("PASSPRO_PURGE_DELAY_DAYS", "90")
        assert_refused(w, capsys, before, "campaign", "purge", CAMPAIGN, code=1, says="90 jours")


# --- the file format and the rule, alone --------------------------------------------------------------------


def _document() -> dict:
    return {"format": "passpro-archive", "version": 1, "academie": "paris", "campaign": "2027",
            "created_at": "2027-09-01T08:00:00+00:00", "created_by": "t", "counts": {"keys": 0},
            "keys": [], "rectorat": {"entries": [], "event_ids": []}, "checkpoints": [], "wrapped_keys": {}}


def test_an_archive_opens_only_intact_and_with_both_keys():
    master, audit_key = MasterKey(new_key()), secrets.token_bytes(32)
    sealed = seal_archive(_document(), master, audit_key)
    assert open_archive(sealed, master, audit_key) == _document()
    assert sealed.startswith(b"PASSPRO-ARCHIVE\n")
    with pytest.raises(ArchiveError, match="signature"):
        open_archive(sealed, master, secrets.token_bytes(32))
    with pytest.raises(ArchiveError, match="clé maîtresse"):
        open_archive(sealed, MasterKey(new_key()), audit_key)
    parts = split_archive(sealed)
    forged_header = sealed.replace(b'"campaign":"2027"', b'"campaign":"2026"')
    with pytest.raises(ArchiveError, match="signature"):
        open_archive(forged_header, master, audit_key)
    with pytest.raises(ArchiveError, match="n'est pas une archive"):
        open_archive(gzip.compress(b"{}"), master, audit_key)
    newer = sealed.replace(b'"version":1', b'"version":2', 1)
    with pytest.raises(ArchiveError, match="format 2"):
        open_archive(newer, master, audit_key)
    assert parts.header["cipher"] == "AES-256-GCM" and parts.header["kdf"] == "HKDF-SHA256"


def test_a_campaign_is_purged_only_once_closed_for_the_delay():
    delay = timedelta(days=61)
    closes = datetime(2027, 7, 4, 22, 0, tzinfo=UTC)
    closed = CampaignFile(campaign="2027", opened=True, bonus_points=2500, closes_at=closes)
    assert "délai de recours" in closing_refusal(closed, closes + timedelta(days=60), delay)
    assert closing_refusal(closed, closes + delay, delay) is None
    never = CampaignFile(campaign="2027", opened=True, bonus_points=2500, closes_at=None)
    assert "jamais été close" in closing_refusal(never, closes + timedelta(days=999), delay)
    assert "aucune campagne" in closing_refusal(CampaignFile(campaign="2027"), closes, delay)
