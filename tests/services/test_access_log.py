"""Who looked (issue 5, item 4): every read that shows a student's personal fields leaves one entry — who, when,
what, how — in the student's append-only access log, and nothing personal; refused reads leave none.

Real Redis (an académie per test), the services in process on SQLite files, the `passpro` command in process.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from conftest import CAMPAIGN, Passpro
from services.cli import main
from services.cli.audit import paris
from shared.runtime.access_log import Access

COLLEGE = "0752536Z"  # Collège Voltaire
OTHER_COLLEGE = "0751790N"  # Collège Pierre Alviset
LYCEE = "0752845K"  # LP Théophile Gautier
OTHER_LYCEE = "0750788Z"  # LP Marcel Deprez
FORMATION = "2473121131"
LEA, NOE, ZOE, ELSEWHERE = "000000001LE", "000000002NO", "000000003ZO", "000000004EL"
ENTRY_FIELDS = {"at", "user_id", "role", "uai", "service", "what", "channel"}
PERSONAL = ("Martin", "Léa", "3e B", "Claire Dupont", "claire.dupont", "Motivée", "portes ouvertes")


# --- the scene -----------------------------------------------------------------------------------------


def _created(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def journey(passpro: Passpro, registration, evaluation, ine: str = LEA, college: str = COLLEGE) -> dict:
    """A student registered, with the collège's avis, an interview held with its report and a favorable lycée
    avis; the last write's answer (its positions let a read wait for the views)."""
    principal = passpro.auth("principal", college, f"principal-{college}")
    voeu = {"lycee_uai": LYCEE, "formation_code": FORMATION}
    now = datetime.now(UTC)
    _created(registration.post("/api/students", headers=principal, json={
        "student_ine": ine, "college_uai": college, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"}}))
    _created(registration.post(f"/api/students/{ine}/college-avis", headers=principal, json={
        "college_uai": college, "avis": "assez_favorable", "comment": "Motivée, à encourager."}))
    _created(registration.post(f"/api/students/{ine}/interviews", headers=principal, json={
        **voeu, "scheduled_at": (now + timedelta(days=3)).isoformat(), "mode": "presentiel"}))
    _created(evaluation.post(f"/api/students/{ine}/interviews/held", headers=passpro.auth("lycee_staff", LYCEE), json={
        **voeu, "held_at": (now - timedelta(hours=1)).isoformat(),
        "report": {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante",
                   "advice": "Visiter l'atelier lors des portes ouvertes."}}))
    return _created(evaluation.post(
        f"/api/students/{ine}/lycee-avis", headers=passpro.auth("proviseur", LYCEE), json={**voeu, "avis": "favorable"}
    ))


def register(passpro: Passpro, registration, ine: str, college: str = COLLEGE) -> dict:
    return _created(registration.post("/api/students", headers=passpro.auth("principal", college), json={
        "student_ine": ine, "college_uai": college, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"}}))


def raw_entries(passpro: Passpro, ine: str) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in passpro.redis.xrange(passpro.keys.access_log(CAMPAIGN, ine))
    ]


def accesses(passpro: Passpro, ine: str) -> list[tuple[str, str, str, str, str, str]]:
    """(user_id, role, uai, service, what, channel) of each entry, oldest first; checks each holds nothing personal."""
    found = []
    for entry in raw_entries(passpro, ine):
        assert set(entry) == ENTRY_FIELDS, entry
        assert datetime.fromisoformat(entry["at"]).utcoffset() == timedelta(0)
        text = json.dumps(entry, ensure_ascii=False)
        assert ine not in text and not any(word in text for word in PERSONAL), entry
        found.append((entry["user_id"], entry["role"], entry["uai"], entry["service"], entry["what"], entry["channel"]))
    return found


def access_keys(passpro: Passpro) -> dict[str, int]:
    pattern = passpro.keys.access_log(CAMPAIGN, "*")
    return {k.decode(): passpro.redis.xlen(k) for k in passpro.redis.scan_iter(match=pattern, count=1000)}


def cli(passpro: Passpro, monkeypatch, *args: str) -> int:
    """The `passpro` command in process, configured as the services of this académie."""
    settings = passpro.settings("scoring")
    env = {
        "PASSPRO_REDIS_URL": passpro.redis_url, "PASSPRO_ACADEMIE": passpro.academie, "PASSPRO_CAMPAIGN": CAMPAIGN,
        "PASSPRO_DATA_DIR": str(passpro.data_dir), "PASSPRO_MASTER_KEY": passpro.master_key,
        "PASSPRO_KEYSTORE_DATABASE_URL": passpro.keystore_database_url(), "PASSPRO_JWT_SECRET": passpro.secret,
        "PASSPRO_SCORING_DATABASE_URL": settings.resolved_database_url(),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PASSPRO_SCORING_DATABASE_SCHEMA", raising=False)
    return main(list(args))


def wait_for_scoring(scoring, ines: list[str], seconds: float = 10) -> None:
    """Until scoring's view has the students' favorable avis (it follows the log a moment later)."""
    from sqlalchemy import select

    from services.scoring.views import voeux

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with scoring.app.state.runtime.engine.connect() as conn:
            found = set(conn.execute(select(voeux.c.ine).where(voeux.c.bonus_points > 0)).scalars())
        if found >= set(ines):
            return
        time.sleep(0.05)
    raise AssertionError(f"scoring's view never showed {ines}")


def signed_in(client, passpro: Passpro, service: str, role: str, uai: str | None, user: str | None = None):
    """A page session: the signed token in the service's cookie, as the sign-in page sets it."""
    client.cookies.set(f"passpro_{service}", passpro.token(role, uai, user))
    return client


# --- the API ------------------------------------------------------------------------------------------------


def test_the_list_of_students_logs_one_entry_per_student_it_returns(passpro, registration):
    for ine in (LEA, NOE, ZOE):
        written = register(passpro, registration, ine)
    register(passpro, registration, ELSEWHERE, OTHER_COLLEGE)
    principal = passpro.auth("principal", COLLEGE, "principal-voltaire")
    answer = registration.get(
        "/api/students", params={"limit": 2, "min_position": written["positions"]["service"]}, headers=principal
    )
    assert answer.status_code == 200 and answer.json()["total"] == 3
    returned = [s["ine"] for s in answer.json()["items"]]
    assert len(returned) == 2

    expected = [("principal-voltaire", "principal", COLLEGE, "registration", "liste des élèves", "api")]
    for ine in returned:
        assert accesses(passpro, ine) == expected
    assert set(access_keys(passpro)) == {passpro.keys.access_log(CAMPAIGN, ine) for ine in returned}

    # The rectorat reads every collège: each student it was shown, once per read.
    rectorat = passpro.auth("rectorat", None, "dsden-durand")
    assert registration.get("/api/students", headers=rectorat).json()["total"] == 4
    assert accesses(passpro, ELSEWHERE) == [("dsden-durand", "rectorat", "", "registration", "liste des élèves", "api")]
    assert len(accesses(passpro, returned[0])) == 2


def test_a_refused_read_logs_nothing(passpro, registration, evaluation, scoring):
    written = journey(passpro, registration, evaluation)
    before = access_keys(passpro)
    position = {"min_position": written["positions"]["service"]}
    assert registration.get("/api/students", headers=passpro.auth("proviseur", LYCEE)).status_code == 403
    other = registration.get("/api/students", params=position, headers=passpro.auth("principal", OTHER_COLLEGE))
    assert other.status_code == 200 and other.json()["items"] == []  # another collège's student is not shown
    assert evaluation.get("/api/interviews", headers=passpro.auth("principal", COLLEGE)).status_code == 403
    other_lycee = evaluation.get("/api/interviews", params=position, headers=passpro.auth("proviseur", OTHER_LYCEE))
    assert other_lycee.status_code == 200 and other_lycee.json()["items"] == []
    for role, uai in (("principal", COLLEGE), ("proviseur", LYCEE)):
        assert scoring.get(f"/api/audit/students/{LEA}", headers=passpro.auth(role, uai)).status_code == 403
        assert scoring.get(f"/api/access-log/{LEA}", headers=passpro.auth(role, uai)).status_code == 403
    rectorat = passpro.auth("rectorat", None)
    assert scoring.get(f"/api/audit/students/{NOE}", headers=rectorat).status_code == 404
    assert scoring.get("/api/audit/students/pas-un-ine", headers=rectorat).status_code == 422
    invalid = scoring.get(f"/api/audit/students/{LEA}", params={"as_of": "hier"}, headers=rectorat)
    assert invalid.status_code == 422
    assert access_keys(passpro) == before == {}


def test_the_lycee_list_the_audit_timeline_and_the_affelnet_export_log_their_reads(passpro, registration, evaluation, scoring):
    written = journey(passpro, registration, evaluation)
    journey(passpro, registration, evaluation, NOE)
    position = {"min_position": written["positions"]["service"]}
    assert evaluation.get("/api/interviews", params=position, headers=passpro.auth("proviseur", LYCEE, "pr-gautier")).status_code == 200
    rectorat = passpro.auth("rectorat", None, "dsden-durand")
    assert scoring.get(f"/api/audit/students/{LEA}", headers=rectorat).status_code == 200
    last = journey(passpro, registration, evaluation, ZOE)
    csv = scoring.get("/api/exports/affelnet.csv", params={"min_position": last["positions"]["service"]}, headers=rectorat)
    assert csv.status_code == 200 and csv.text.count("2500") == 3

    assert accesses(passpro, LEA) == [
        ("pr-gautier", "proviseur", LYCEE, "evaluation", "liste des entretiens", "api"),
        ("dsden-durand", "rectorat", "", "scoring", "chronologie d'audit", "api"),
        ("dsden-durand", "rectorat", "", "scoring", "export Affelnet", "api"),
    ]
    assert accesses(passpro, ZOE) == [("dsden-durand", "rectorat", "", "scoring", "export Affelnet", "api")]


def test_the_rectorat_reads_a_student_access_log_over_the_api_oldest_first(passpro, registration, evaluation, scoring):
    journey(passpro, registration, evaluation)
    rectorat = passpro.auth("rectorat", None, "dsden-durand")
    for _ in range(2):
        assert scoring.get(f"/api/audit/students/{LEA}", headers=rectorat).status_code == 200
    answer = scoring.get(f"/api/access-log/{LEA}", headers=rectorat)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ine"] == LEA and body["campaign"] == CAMPAIGN and body["total"] == 2
    assert [i["what"] for i in body["items"]] == ["chronologie d'audit"] * 2
    assert body["items"][0]["at"] <= body["items"][1]["at"] and body["items"][0]["position"]
    assert len(raw_entries(passpro, LEA)) == 2  # reading the access log is not itself a read of the file
    assert scoring.get(f"/api/access-log/{NOE}", headers=rectorat).status_code == 404
    assert scoring.get("/api/access-log/123", headers=rectorat).status_code == 422


# --- the pages ------------------------------------------------------------------------------------------------


def test_each_page_that_shows_a_student_logs_it_as_a_page_read(passpro, registration, evaluation, scoring):
    written = journey(passpro, registration, evaluation)
    register(passpro, registration, ELSEWHERE, OTHER_COLLEGE)
    position = written["positions"]["service"]

    signed_in(registration, passpro, "registration", "principal", COLLEGE, "principal-voltaire")
    assert registration.get("/", params={"position": position}).status_code == 200
    assert registration.get(f"/eleves/{LEA}").status_code == 200
    signed_in(evaluation, passpro, "evaluation", "lycee_staff", LYCEE, "staff-gautier")
    assert evaluation.get("/", params={"position": position}).status_code == 200
    assert evaluation.get(f"/eleves/{LEA}/{FORMATION}").status_code == 200
    assert evaluation.get(f"/eleves/{LEA}/{FORMATION}/compte-rendu").status_code == 200
    signed_in(scoring, passpro, "scoring", "rectorat", None, "dsden-durand")
    assert scoring.get(f"/eleves/{LEA}").status_code == 200

    assert accesses(passpro, LEA) == [
        ("principal-voltaire", "principal", COLLEGE, "registration", "liste des élèves", "page"),
        ("principal-voltaire", "principal", COLLEGE, "registration", "page élève", "page"),
        ("staff-gautier", "lycee_staff", LYCEE, "evaluation", "liste des entretiens", "page"),
        ("staff-gautier", "lycee_staff", LYCEE, "evaluation", "page entretien", "page"),
        ("staff-gautier", "lycee_staff", LYCEE, "evaluation", "compte rendu imprimable", "page"),
        ("dsden-durand", "rectorat", "", "scoring", "chronologie d'audit", "page"),
    ]
    assert access_keys(passpro).keys() == {passpro.keys.access_log(CAMPAIGN, LEA)}  # the other collège's: unseen


def test_a_page_refused_or_not_found_logs_nothing(passpro, registration, evaluation, scoring):
    journey(passpro, registration, evaluation)
    register(passpro, registration, ELSEWHERE, OTHER_COLLEGE)
    signed_in(registration, passpro, "registration", "principal", OTHER_COLLEGE)
    assert registration.get(f"/eleves/{LEA}").status_code == 404
    signed_in(evaluation, passpro, "evaluation", "proviseur", OTHER_LYCEE)
    assert evaluation.get(f"/eleves/{LEA}/{FORMATION}").status_code == 404
    signed_in(scoring, passpro, "scoring", "principal", COLLEGE)
    assert scoring.get(f"/eleves/{LEA}").status_code == 403
    signed_in(scoring, passpro, "scoring", "rectorat", None)
    assert scoring.get(f"/eleves/{NOE}").status_code == 404
    assert access_keys(passpro) == {}


def test_the_dashboard_logs_the_students_whose_names_it_shows(passpro, registration, evaluation, scoring):
    journey(passpro, registration, evaluation)
    journey(passpro, registration, evaluation, NOE)
    wait_for_scoring(scoring, [LEA, NOE])
    signed_in(scoring, passpro, "scoring", "rectorat", None, "dsden-durand")
    assert "MARTIN" in scoring.get("/").text
    for ine in (LEA, NOE):
        assert accesses(passpro, ine) == [
            ("dsden-durand", "rectorat", "", "scoring", "tableau de bord (noms des élèves)", "page")
        ]


# --- the command line --------------------------------------------------------------------------------------------


def test_access_log_prints_who_read_the_file_in_paris_time_oldest_first(passpro, registration, evaluation, scoring, monkeypatch, capsys):
    written = journey(passpro, registration, evaluation)
    registration.get("/api/students", params={"min_position": written["positions"]["service"]},
                     headers=passpro.auth("principal", COLLEGE, "principal-voltaire"))
    assert scoring.get(f"/api/audit/students/{LEA}", headers=passpro.auth("rectorat", None, "dsden-durand")).status_code == 200
    assert cli(passpro, monkeypatch, "audit", "student", LEA) == 0
    capsys.readouterr()

    assert cli(passpro, monkeypatch, "access-log", LEA.lower()) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert f"Consultations du dossier de l'élève {LEA} — campagne {CAMPAIGN}" in lines[0] and "heure de Paris" in lines[0]
    header = lines[1].split()
    assert header[:2] == ["Quand", "Qui"] and "Établissement" in header and "Canal" in header
    rows = lines[3:6]
    assert "principal-voltaire" in rows[0] and "Collège Voltaire (0752536Z)" in rows[0] and "liste des élèves" in rows[0]
    assert "dsden-durand" in rows[1] and "Rectorat de Paris" in rows[1] and "chronologie d'audit" in rows[1] and "API" in rows[1]
    assert "cli:" in rows[2] and "commande" in rows[2]
    assert "3 consultation(s)." in out
    first = Access(**raw_entries(passpro, LEA)[0])
    assert paris(first.at) in rows[0]
    assert not any(word in out for word in PERSONAL)

    assert cli(passpro, monkeypatch, "access-log", LEA, "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert [i["channel"] for i in body["items"]] == ["api", "api", "cli"]
    assert len(raw_entries(passpro, LEA)) == 3  # printing the access log logs nothing


def test_access_log_refuses_a_bad_ine_or_an_unknown_student_in_french(passpro, monkeypatch, capsys):
    assert cli(passpro, monkeypatch, "access-log", "123") == 2
    assert "passpro access-log :" in capsys.readouterr().err
    assert cli(passpro, monkeypatch, "access-log", NOE) == 2
    assert f"aucun élève {NOE} dans la campagne {CAMPAIGN}" in capsys.readouterr().err
    assert cli(passpro, monkeypatch, "access-log", LEA, "--campaign", "demain") == 2
    assert access_keys(passpro) == {}


def test_audit_student_and_export_affelnet_on_the_command_line_are_logged(passpro, registration, evaluation, scoring, monkeypatch, capsys, tmp_path):
    journey(passpro, registration, evaluation)
    assert cli(passpro, monkeypatch, "audit", "student", NOE) == 2  # unknown: nothing logged
    assert access_keys(passpro) == {}
    assert cli(passpro, monkeypatch, "audit", "student", LEA, "--json") == 0
    wait_for_scoring(scoring, [LEA])
    out = tmp_path / "affelnet.csv"
    assert cli(passpro, monkeypatch, "export", "affelnet", "--out", str(out), "--user", "dsden-martin") == 0
    capsys.readouterr()
    assert LEA in out.read_text()
    entries = accesses(passpro, LEA)
    assert entries[0][1:] == ("rectorat", "", "scoring", "chronologie d'audit", "cli")
    assert entries[0][0].startswith("cli:")
    assert entries[1] == ("dsden-martin", "rectorat", "", "scoring", "export Affelnet", "cli")


@pytest.mark.parametrize("content, expected", [
    ("INE;UAI_ACCUEIL;CODE_MEF;BONUS\r\n", []),
    ("INE;UAI_ACCUEIL;CODE_MEF;BONUS\r\nA;L1;F1;2500\r\nA;L2;F2;2500\r\nB;L1;F1;2500\r\n", ["A", "B"]),
])
def test_the_students_an_affelnet_file_names_are_read_from_its_first_column(content, expected):
    from shared.runtime.access_log import ines_of_affelnet_file

    assert ines_of_affelnet_file(content) == expected
