"""The audit (issue 4, items 5 and 6): a student's timeline as of a time or a log position, the Affelnet
exports on record, and `passpro audit verify` — clean on an untouched system, naming every difference
when the projection, the log or the checkpoints were touched by hand.

Real Redis (own académie per test) and real databases (a SQLite file; PostgreSQL where it says so).
"""

from __future__ import annotations

from event_factories import YEAR  # the year of the campaign to come (2027 until its rentrée)
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from audited import CAMPAIGN, Audited, close, make_audited
from services_world import Passpro
from services.cli import main
from services.cli.audit import paris
from services.records.audit import Chain, Checkpoint, compare_projection, entry_hash
from services.records.timeline import InvalidAsOf, parse_as_of
from services.scoring.views import checkpoints, student_totals, voeux
from shared.contracts.events import event_to_fields
from shared.runtime.log.client import EventLog
from event_factories import PROVISEUR, lycee_avis, make_event
from services.scoring.views import positions as positions_table

FAVORED, RESERVED, WAITING = "000000001FA", "000000002RE", "000000003WA"
LYCEE, FORMATION, COLLEGE = "0752845K", "2473121131", "0752536Z"
VOEU = f"{LYCEE}/{FORMATION}"


# --- the world ---------------------------------------------------------------------------------------


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path):
    w = make_audited(redis_url, academie, f"sqlite:///{tmp_path / 'scoring.sqlite3'}", None, tmp_path)
    yield w
    close(w)


@pytest.fixture(params=["sqlite", "postgres"])
def any_world(request, redis_url: str, academie: str, tmp_path: Path):
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'scoring.sqlite3'}", None
    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
    w = make_audited(redis_url, academie, url, schema, tmp_path)
    yield w
    close(w)


def healthy(w: Audited) -> Audited:
    """Three students (a favorable lycée avis, a reserved one, none yet), projected and checkpointed."""
    w.open_campaign()
    w.journey(FAVORED, "favorable")
    w.journey(RESERVED, "reserve")
    w.journey(WAITING, None)
    w.catch_up()
    # Every stream with entries is signed; scoring's stream (erasures only) has none here.
    assert {o.stream: o.status for o in w.checkpoint()} == {
        **{k: "recorded" for k in (w.keys.rectorat, *w.keys.campaign_streams(CAMPAIGN)[:2])},
        w.keys.service(CAMPAIGN, "scoring"): "empty",
    }
    return w


def cli(w: Audited, monkeypatch, *args: str) -> int:
    for name, value in w.env().items():
        monkeypatch.setenv(name, value)
    if not w.schema:
        monkeypatch.delenv("PASSPRO_SCORING_DATABASE_SCHEMA", raising=False)
    return main(list(args))


def codes(report) -> set[str]:
    return {d.code for d in report.differences}


# --- pure pieces ---------------------------------------------------------------------------------------


def chained(n: int) -> list[tuple[str, dict[str, str]]]:
    return Audited.rechained([(f"{i + 1}-0", {"event_id": f"e{i}", "payload": f"{{\"n\": {i}}}"}) for i in range(n)])


def test_the_chain_follows_entries_that_chain_and_recompute():
    chain = Chain("s")
    assert [d for entry_id, fields in chained(4) for d in chain.feed(entry_id, fields)] == []
    assert chain.length == 4 and chain.head_id == "4-0"


def test_the_chain_names_the_entry_after_a_removed_one_once():
    entries = chained(4)
    del entries[1]
    chain = Chain("s")
    found = [d for entry_id, fields in entries for d in chain.feed(entry_id, fields)]
    assert [(d.code, d.where) for d in found] == [("chain_broken", "s 3-0")]


def test_the_chain_names_a_changed_field_by_its_entry():
    entries = chained(3)
    entries[1][1]["payload"] = '{"n": 99}'
    chain = Chain("s")
    found = [d for entry_id, fields in entries for d in chain.feed(entry_id, fields)]
    assert [(d.code, d.where) for d in found] == [("hash_mismatch", "s 2-0")]


def test_a_checkpoint_signature_covers_every_field_and_needs_the_key():
    key = b"k" * 40
    signed = Checkpoint("s", "5-0", "a" * 40, 5, f"{YEAR}-03-01T10:00:00+00:00").signed(key)
    assert signed.is_authentic(key)
    assert not signed.is_authentic(b"another key, longer than 32 bytes!!")
    for change in ({"stream": "t"}, {"entry_id": "6-0"}, {"hash": "b" * 40}, {"length": 4}, {"recorded_at": "2027"}):
        assert not Checkpoint(**{**signed.__dict__, **change}).is_authentic(key), change


def test_as_of_is_a_time_with_an_offset_or_a_log_position():
    assert parse_as_of("1789000000000-3").position == "1789000000000-3"
    assert parse_as_of(f"{YEAR}-03-15T12:00:00+01:00").moment == datetime(YEAR, 3, 15, 11, 0, tzinfo=UTC)
    assert parse_as_of(f"{YEAR}-03-15T11:00:00Z").moment == datetime(YEAR, 3, 15, 11, 0, tzinfo=UTC)
    assert parse_as_of(None) is None
    for bad in (f"{YEAR}-03-15T12:00:00", "hier", "12-", "-3"):
        with pytest.raises(InvalidAsOf):
            parse_as_of(bad)


def test_the_comparison_names_missing_unexplained_and_differing_rows():
    row = {"college_uai": COLLEGE, "college_avis": "favorable", "withdrawn": False, "total_bonus_points": 2500}
    expected = ({}, {(CAMPAIGN, "A"): row, (CAMPAIGN, "B"): row})
    actual = ({}, {(CAMPAIGN, "B"): row | {"total_bonus_points": 0}, (CAMPAIGN, "C"): row})
    found = compare_projection(expected, actual, parked={f"{YEAR}:B"})
    assert [(d.code, d.where) for d in found] == [
        ("student_total_missing", f"campagne {YEAR} élève A"),
        ("student_total_differs", f"campagne {YEAR} élève B"),
        ("student_total_unexplained", f"campagne {YEAR} élève C"),
    ]
    assert found[0].message.startswith("absent de la projection ; le journal donne college_uai='0752536Z'")
    assert found[1].message.startswith("total_bonus_points : projection 0, journal 2500. L'élève est en attente")
    assert "sans aucun événement du journal" in found[2].message and "lettre morte" not in found[2].message


# --- verify: a healthy system ----------------------------------------------------------------------------


def test_an_untouched_log_verifies_clean_and_the_command_exits_0(any_world, monkeypatch, capsys):
    w = healthy(any_world)
    report = w.verify()
    assert report.ok, [str(d) for d in report.differences]
    assert report.checkpoints_checked == 3 and report.student_streams == 3
    assert report.rows_compared == {"voeux": 3, "student_totals": 3}
    assert sum(report.entries.values()) == 1 + 5 + 5 + 4

    assert cli(w, monkeypatch, "audit", "verify") == 0
    assert "Aucune différence" in capsys.readouterr().out


def test_verify_compares_only_up_to_the_positions_the_projection_has_stored(world):
    w = healthy(world)
    w.journey("000000004LA", "favorable")  # written, not yet applied
    report = w.verify()
    assert report.ok, [str(d) for d in report.differences]
    assert report.not_yet_applied == {w.stream("registration"): 3, w.stream("evaluation"): 2}
    assert report.rows_compared == {"voeux": 3, "student_totals": 3}


# --- verify: the projection altered by hand --------------------------------------------------------------


def test_verify_names_the_student_whose_projection_rows_were_altered_by_hand(any_world, monkeypatch, capsys):
    w = healthy(any_world)
    with w.engine.begin() as conn:
        conn.execute(update(voeux).where(voeux.c.ine == RESERVED).values(bonus_points=2500))
        conn.execute(student_totals.delete().where(student_totals.c.ine == WAITING))
    report = w.verify()
    assert [(d.code, d.where) for d in report.differences] == [
        ("voeu_differs", f"campagne {YEAR} élève {RESERVED} vœu {VOEU}"),
        ("student_total_missing", f"campagne {YEAR} élève {WAITING}"),
    ]
    assert report.differences[0].message == "bonus_points : projection 2500, journal 0."

    assert cli(w, monkeypatch, "audit", "verify") == 1
    out = capsys.readouterr().out
    assert "2 différence(s)" in out and RESERVED in out and WAITING in out


def test_a_student_held_behind_a_dead_letter_is_named_with_the_reason(world):
    w = healthy(world)
    w.journey("000000005DL", None)

    async def poison(r) -> None:
        # Through the real append script, so the log is intact: only the payload cannot be read.
        log = EventLog(r, w.keys)
        fields = event_to_fields(make_event(lycee_avis("favorable"), actor=PROVISEUR, ine="000000005DL"))
        args = ["4", fields["event_id"], "f", *[x for pair in (fields | {"payload": '{"avis": '}).items() for x in pair]]
        keys = [w.stream("evaluation"), w.student("000000005DL"), w.keys.event_ids(CAMPAIGN)]
        assert (await log._append(keys=keys, args=args))[0] in (b"ok", "ok")

    w.run(poison)
    w.append("000000005DL", [("evaluation", lycee_avis("favorable"), PROVISEUR)], start_version=5)
    w.catch_up()

    report = w.verify()
    assert len(report.unreadable) == 1 and "LyceeAvisGiven" in report.unreadable[0]
    student = f"campagne {YEAR} élève 000000005DL"
    assert [(d.code, d.where, d.message.split(" L'élève")[0]) for d in report.differences] == [
        ("voeu_differs", f"{student} vœu {VOEU}", "lycee_avis : projection None, journal 'favorable'."),
        ("voeu_differs", f"{student} vœu {VOEU}", "bonus_points : projection 0, journal 2500."),
        ("student_total_differs", student, "total_bonus_points : projection 0, journal 2500."),
    ]
    assert all("en attente derrière une lettre morte" in d.message for d in report.differences)


# --- verify: the log tampered with in Redis ----------------------------------------------------------------


def test_verify_names_an_entry_deleted_from_a_service_stream(world, monkeypatch, capsys):
    w = healthy(world)
    registration = w.entries(w.stream("registration"))
    gone_id, gone = registration[6]  # RESERVED's college avis
    w.redis.xdel(w.stream("registration"), gone_id)

    report = w.verify()
    assert {"chain_broken", "checkpoint_length_differs", "student_entry_unknown", "event_missing"} <= codes(report)
    broken = next(d for d in report.differences if d.code == "chain_broken")
    assert broken.where == f"{w.stream('registration')} {registration[7][0]}"
    assert any(gone["event_id"] in d.message for d in report.differences if d.code == "event_missing")

    assert cli(w, monkeypatch, "audit", "verify") == 1
    assert registration[7][0] in capsys.readouterr().out


def test_verify_names_a_forged_entry_added_by_hand(world):
    w = healthy(world)
    head_id, head = w.entries(w.stream("evaluation"))[-1]
    forged = head | {"event_id": "7b0c2f4e-0000-4000-8000-000000000001", "student_ine": RESERVED}
    forged_id = w.redis.xadd(w.stream("evaluation"), forged)

    report = w.verify()
    assert {"chain_broken", "hash_mismatch", "event_not_indexed", "student_entry_missing"} <= codes(report)
    assert all(d.where.endswith(forged_id) for d in report.differences)


def test_a_forged_entry_that_extends_the_chain_is_still_caught_by_the_event_index(world):
    w = healthy(world)
    _, head = w.entries(w.stream("evaluation"))[-1]  # WAITING's interview held
    forged = head | {
        "event_id": "7b0c2f4e-0000-4000-8000-000000000002",
        "student_version": str(len(w.entries(w.student(WAITING))) + 1),
        "prev_hash": head["hash"],
    }
    forged["hash"] = entry_hash(forged)
    w.redis.xadd(w.stream("evaluation"), forged)
    w.redis.xadd(w.student(WAITING), forged)

    report = w.verify()
    assert [d.code for d in report.differences] == ["event_not_indexed"]
    assert forged["event_id"] in report.differences[0].message


@pytest.mark.parametrize("order", ["same order", "reordered"])
def test_verify_names_a_stream_deleted_and_added_again(world, order):
    w = healthy(world)
    entries = w.entries(w.stream("registration"))
    if order == "reordered":
        entries[3], entries[4] = entries[4], entries[3]
    w.rewrite(w.stream("registration"), [(None, fields) for _, fields in entries])

    report = w.verify()
    assert {"checkpoint_entry_missing", "event_moved", "position_entry_missing"} <= codes(report)
    if order == "reordered":
        assert "chain_broken" in codes(report)
    else:
        assert "chain_broken" not in codes(report)  # the chain alone cannot see it: the checkpoint does


def test_a_changed_field_with_every_hash_recomputed_is_caught_by_the_checkpoint(world, monkeypatch, capsys):
    w = healthy(world)
    evaluation = w.entries(w.stream("evaluation"))
    n = next(i for i, (_, f) in enumerate(evaluation) if f["student_ine"] == RESERVED and f["event_type"] == "LyceeAvisGiven")
    evaluation[n][1]["payload"] = evaluation[n][1]["payload"].replace('"reserve"', '"favorable"')
    rewritten = w.rechained(evaluation)
    w.rewrite(w.stream("evaluation"), rewritten)
    # ... and the student's stream rewritten to match, every id kept: only the key-less chain is fooled.
    by_event = {fields["event_id"]: fields for _, fields in rewritten}
    w.rewrite(w.student(RESERVED), [(i, by_event.get(f["event_id"], f)) for i, f in w.entries(w.student(RESERVED))])

    report = w.verify()
    assert "chain_broken" not in codes(report) and "hash_mismatch" not in codes(report)
    assert "checkpoint_hash_differs" in codes(report)
    assert ("voeu_differs", f"campagne {YEAR} élève {RESERVED} vœu {VOEU}") in [(d.code, d.where) for d in report.differences]

    assert cli(w, monkeypatch, "audit", "verify", "--json") == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is False and "checkpoint_hash_differs" in {d["code"] for d in answer["differences"]}


def test_a_changed_field_without_its_hash_is_named(world):
    w = healthy(world)
    entries = w.entries(w.stream("registration"))
    entries[1][1]["payload"] = entries[1][1]["payload"].replace("motivée", "démotivée")
    w.rewrite(w.stream("registration"), entries)  # same ids: only the field changed

    report = w.verify()
    assert {(d.code, d.where) for d in report.differences} >= {
        ("hash_mismatch", f"{w.stream('registration')} {entries[1][0]}"),
    }
    assert "student_entry_differs" in codes(report)


def test_verify_names_an_entry_deleted_from_a_student_stream(world):
    w = healthy(world)
    first_id, _ = w.entries(w.student(FAVORED))[0]
    w.redis.xdel(w.student(FAVORED), first_id)
    assert {"student_version_gap", "student_entry_missing"} <= codes(w.verify())


def test_verify_names_the_end_of_a_stream_the_projection_had_already_read(world):
    w = healthy(world)
    last_id, _ = w.entries(w.stream("evaluation"))[-1]
    w.redis.xdel(w.stream("evaluation"), last_id)
    report = w.verify()
    assert {"projection_ahead_of_log", "checkpoint_entry_missing", "event_missing"} <= codes(report)


def test_the_installed_command_exits_0_when_all_is_well_and_1_naming_what_was_deleted(world):
    w = healthy(world)
    command = [shutil.which("passpro")] if shutil.which("passpro") else [sys.executable, "-m", "services.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPRO_")} | w.env()

    def verify() -> subprocess.CompletedProcess:
        return subprocess.run([*command, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)

    clean = verify()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    gone_id, gone = w.entries(w.student(RESERVED))[-1]
    w.redis.xdel(w.student(RESERVED), gone_id)
    tampered = verify()
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "[student_entry_missing]" in tampered.stdout and gone["event_id"] in tampered.stdout


# --- verify: the checkpoints ----------------------------------------------------------------------------


def test_verify_names_a_checkpoint_altered_in_the_database(world):
    w = healthy(world)
    with w.engine.begin() as conn:
        conn.execute(update(checkpoints).where(checkpoints.c.stream == w.stream("evaluation")).values(length=checkpoints.c.length - 1))
    assert {"checkpoint_forged", "checkpoint_length_differs"} == codes(w.verify())


def test_checkpoints_checked_with_another_key_or_none_are_not_trusted(world, monkeypatch, capsys):
    w = healthy(world)
    assert codes(w.verify(key=b"x" * 40)) == {"checkpoint_forged"}
    assert codes(w.verify(key=None)) == {"checkpoints_unverified"}
    monkeypatch.delenv("PASSPRO_CHECKPOINT_KEY", raising=False)
    for name, value in w.env().items():
        if name != "PASSPRO_CHECKPOINT_KEY":
            monkeypatch.setenv(name, value)
    assert main(["audit", "verify"]) == 1
    assert "PASSPRO_CHECKPOINT_KEY" in capsys.readouterr().out


# --- a student's timeline, over HTTP ----------------------------------------------------------------------


def _created(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def student_life(passpro: Passpro, registration, evaluation) -> list[dict]:
    """A student's whole journey through the services, with a reserved lycée avis corrected to favorable."""
    principal = passpro.auth("principal", COLLEGE, "principal-voltaire")
    staff = passpro.auth("lycee_staff", LYCEE, "staff-gautier")
    proviseur = passpro.auth("proviseur", LYCEE, "proviseur-gautier")
    ine = FAVORED
    referent = {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"}
    now = datetime.now(UTC)
    voeu = {"lycee_uai": LYCEE, "formation_code": FORMATION}
    return [
        _created(registration.post("/api/students", headers=principal, json={
            "student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa",
            "class_name": "3e B", "referent": referent})),
        _created(registration.post(f"/api/students/{ine}/college-avis", headers=principal, json={
            "college_uai": COLLEGE, "avis": "assez_favorable", "comment": "Motivée, à encourager."})),
        _created(registration.post(f"/api/students/{ine}/interviews", headers=principal, json={
            **voeu, "scheduled_at": (now + timedelta(days=3)).isoformat(), "mode": "presentiel"})),
        _created(evaluation.post(f"/api/students/{ine}/interviews/held", headers=staff, json={
            **voeu, "held_at": (now - timedelta(hours=1)).isoformat(),
            "report": {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante",
                       "advice": "Visiter l'atelier lors des portes ouvertes."}})),
        _created(evaluation.post(f"/api/students/{ine}/lycee-avis", headers=proviseur, json={**voeu, "avis": "reserve"})),
        _created(evaluation.post(f"/api/students/{ine}/lycee-avis", headers=proviseur, json={**voeu, "avis": "favorable"})),
    ]


def test_the_timeline_says_who_did_what_when_and_from_where_with_the_bonus_after_each_step(
    passpro, registration, evaluation, scoring
):
    written = student_life(passpro, registration, evaluation)
    answer = scoring.get(f"/api/audit/students/{FAVORED}", headers=passpro.auth("rectorat", None))
    assert answer.status_code == 200, answer.text
    body = answer.json()

    timeline = body["timeline"]
    assert [t["position"] for t in timeline] == [w["positions"]["student"] for w in written]
    assert [t["label"] for t in timeline] == [
        "Inscription au dispositif", "Avis du collège", "Entretien programmé", "Entretien tenu", "Avis du lycée", "Avis du lycée",
    ]
    assert [t["actor"]["user_id"] for t in timeline] == [
        "principal-voltaire", "principal-voltaire", "principal-voltaire", "staff-gautier", "proviseur-gautier", "proviseur-gautier",
    ]
    assert timeline[0]["establishment"] == {"uai": COLLEGE, "name": "Collège Voltaire"}
    assert timeline[3]["establishment"] == {"uai": LYCEE, "name": "Lycée professionnel Théophile Gautier"}
    assert timeline[1]["payload"]["avis"] == "assez_favorable" and "avis : assez favorable" in timeline[1]["details"]
    assert timeline[3]["payload"]["report"]["advice"] == "Visiter l'atelier lors des portes ouvertes."
    assert [t["bonus_after"]["total_bonus_points"] for t in timeline] == [0, 0, 0, 0, 0, 2500]
    assert all(t["recorded_at"] == w["event"]["recorded_at"] for t, w in zip(timeline, written, strict=True))
    assert body["total_bonus_points"] == 2500 and body["campaign_bonus_points"] == 2500
    assert body["voeux"] == [{
        "lycee_uai": LYCEE, "formation_code": FORMATION, "lycee_avis": "favorable", "bonus_points": 2500,
        "college_avis_present": True, "interview_held": True,
    }]


def test_the_bonus_as_it_stood_at_a_position_or_a_time(passpro, registration, evaluation, scoring):
    written = student_life(passpro, registration, evaluation)
    rectorat = passpro.auth("rectorat", None)
    reserve = written[4]

    def audit(as_of: str) -> dict:
        answer = scoring.get(f"/api/audit/students/{FAVORED}", params={"as_of": as_of}, headers=rectorat)
        assert answer.status_code == 200, answer.text
        return answer.json()

    at_student_position = audit(reserve["positions"]["student"])
    assert len(at_student_position["timeline"]) == 5
    assert at_student_position["total_bonus_points"] == 0 and at_student_position["voeux"][0]["lycee_avis"] == "reserve"
    # The service position of the same append, and its recording time, say the same.
    for as_of in (reserve["positions"]["service"], reserve["event"]["recorded_at"]):
        assert audit(as_of)["timeline"] == at_student_position["timeline"], as_of
    assert audit(written[5]["event"]["recorded_at"])["total_bonus_points"] == 2500
    before = audit("2000-01-01T00:00:00+01:00")
    assert before["timeline"] == [] and before["total_bonus_points"] == 0


def test_the_audit_timeline_is_for_the_rectorat_only_and_checks_its_inputs(passpro, registration, evaluation, scoring):
    student_life(passpro, registration, evaluation)
    path = f"/api/audit/students/{FAVORED}"
    assert scoring.get(path, headers=passpro.auth("principal", COLLEGE)).status_code == 403
    assert scoring.get(path, headers=passpro.auth("proviseur", LYCEE)).status_code == 403
    rectorat = passpro.auth("rectorat", None)
    assert scoring.get(f"/api/audit/students/{WAITING}", headers=rectorat).status_code == 404
    # "99…9-0": twenty digits, as the document allows, but past a stream id's 64 bits (Redis refuses it).
    for bad in ("hier", f"{YEAR}-03-15T12:00:00", "1-0", "99999999999999999999-0", "0-18446744073709551616"):
        answer = scoring.get(path, params={"as_of": bad}, headers=rectorat)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"] == "invalid_as_of"


# --- a student's timeline, on the command line ---------------------------------------------------------------


def test_audit_student_prints_the_timeline_in_paris_time(world, monkeypatch, capsys):
    w = healthy(world)
    assert cli(w, monkeypatch, "audit", "student", FAVORED, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    first = report["timeline"][0]

    assert cli(w, monkeypatch, "audit", "student", FAVORED.lower()) == 0
    out = capsys.readouterr().out
    assert paris(first["occurred_at"]) in out and "heure de Paris" in out
    assert "principal-voltaire (principal), Collège Voltaire (0752536Z)" in out
    assert "avis : favorable" in out and "conseils : Visiter l'atelier lors des portes ouvertes." in out
    assert "Bonus : 2\u202f500 points" in out

    before_the_avis = report["timeline"][3]["position"]
    assert cli(w, monkeypatch, "audit", "student", FAVORED, "--as-of", before_the_avis) == 0
    out = capsys.readouterr().out
    assert f"état à la position {before_the_avis}" in out and "Bonus : 0 point " in out
    assert cli(w, monkeypatch, "audit", "student", FAVORED, "--as-of", "hier") == 2
    assert cli(w, monkeypatch, "audit", "student", "000000009ZZ") == 2
    assert "aucun élève 000000009ZZ" in capsys.readouterr().err


# --- the Affelnet exports ----------------------------------------------------------------------------------


def test_export_affelnet_writes_the_file_and_records_who_when_positions_and_its_sha256(world, monkeypatch, capsys, tmp_path):
    w = healthy(world)
    out = tmp_path / "affelnet.csv"
    assert cli(w, monkeypatch, "export", "affelnet", "--out", str(out), "--user", "dsden-martin") == 0
    capsys.readouterr()
    content = out.read_bytes()
    assert content.decode().splitlines() == ["INE;UAI_ACCUEIL;CODE_MEF;BONUS", f"{FAVORED};{LYCEE};{FORMATION};2500"]

    assert cli(w, monkeypatch, "audit", "exports", "--json") == 0
    [export] = json.loads(capsys.readouterr().out)
    assert export["user_id"] == "dsden-martin" and export["rows"] == 1 and export["campaign"] == CAMPAIGN
    assert export["sha256"] == hashlib.sha256(content).hexdigest()
    with w.engine.connect() as conn:
        positions = dict(conn.execute(select(positions_table)).all())
    assert export["positions"] == {w.keys.stream_name(k): v for k, v in sorted(positions.items())}

    assert cli(w, monkeypatch, "audit", "exports") == 0
    listing = capsys.readouterr().out
    assert "dsden-martin" in listing and export["sha256"] in listing and paris(export["exported_at"]) in listing


def test_an_export_over_http_is_listed_like_one_from_the_command_line(passpro, registration, evaluation, scoring):
    written = student_life(passpro, registration, evaluation)
    rectorat = passpro.auth("rectorat", None, "dsden-durand")
    csv = scoring.get("/api/exports/affelnet.csv", params={"min_position": written[-1]["positions"]["service"]}, headers=rectorat)
    assert csv.status_code == 200, csv.text
    listed = scoring.get("/api/audit/exports", headers=rectorat)
    assert listed.status_code == 200, listed.text
    [export] = listed.json()["items"]
    assert export["user_id"] == "dsden-durand" and export["rows"] == 1
    assert export["sha256"] == csv.headers["X-Content-SHA256"] == hashlib.sha256(csv.content).hexdigest()
    assert export["positions"][f"{CAMPAIGN}:evaluation"] == written[-1]["positions"]["service"]
    assert scoring.get("/api/audit/exports", headers=passpro.auth("principal", COLLEGE)).status_code == 403


def test_the_exports_made_are_paged_in_sql(passpro, scoring):
    """`GET /api/audit/exports` pages as the other lists do: `limit`/`offset` in the SELECT, `total` counted."""
    from sqlalchemy import event

    from services.scoring import affelnet, queries

    rectorat = passpro.auth("rectorat", None, "dsden-durand")
    engine = scoring.app.state.runtime.engine
    with engine.connect() as conn:
        for n in range(5):
            queries.record_export(conn, CAMPAIGN, f"dsden-{n}", {}, f"INE;UAI_ACCUEIL;CODE_MEF;BONUS\n{n}", 0)
        queries.record_export(conn, str(YEAR + 1), "dsden-autre", {}, "autre campagne", 0)
        conn.commit()

    selects: list[str] = []

    def seen(conn, cursor, statement, *_):  # noqa: ANN001, ANN202
        if "exports" in statement:
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        page = scoring.get("/api/audit/exports", params={"campaign": CAMPAIGN, "limit": 2, "offset": 3}, headers=rectorat)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 3)
    assert [item["user_id"] for item in body["items"]] == ["dsden-3", "dsden-4"]
    assert any("LIMIT" in sql.upper() and "OFFSET" in sql.upper() for sql in selects), selects

    everything, total = affelnet.list_exports(engine)
    assert total == 6 and [item["user_id"] for item in everything][-1] == "dsden-autre"
