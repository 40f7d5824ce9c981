"""The family's copy (issue 5, item 5): `passpro student-file` and the rectorat's page write one printable French
document with everything Passpro holds about a student, its own read logged; and the families' information
notice, served by the collège pages to anyone.

Real Redis (an académie per test), the services in process on SQLite files, the `passpro` command in process.
"""

from __future__ import annotations

from event_factories import YEAR  # the year of the campaign to come (2027 until its rentrée)
import base64
import hashlib
import html
import re

from services_world import CAMPAIGN
from services.records import family_copy
from test_access_log import (
    COLLEGE,
    LEA,
    LYCEE,
    NOE,
    access_keys,
    accesses,
    cli,
    journey,
    signed_in,
    wait_for_scoring,
)

EXTERNAL = re.compile(r'(src|href)="(https?:)?//|@import|url\(')


def text_of(page: str) -> str:
    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S))
    return " ".join(html.unescape(without_tags).split())


def student_file(passpro, monkeypatch, capsys, tmp_path, *args: str) -> tuple[int, str, str]:
    out = tmp_path / "dossier.html"
    code = cli(passpro, monkeypatch, "student-file", *args, "--out", str(out))
    captured = capsys.readouterr()
    return code, out.read_text(encoding="utf-8") if out.exists() else "", captured.out + captured.err


def test_student_file_writes_the_whole_file_in_french_with_its_rights_and_logs_the_read(
    passpro, registration, evaluation, scoring, monkeypatch, capsys, tmp_path
):
    journey(passpro, registration, evaluation)
    assert scoring.get(f"/api/audit/students/{LEA}", headers=passpro.auth("rectorat", None, "dsden-durand")).status_code == 200
    code, document, said = student_file(passpro, monkeypatch, capsys, tmp_path, LEA, "--user", "dsden-martin")
    assert code == 0, said
    assert f"Copie pour la famille de l'élève {LEA}" in said and "dossier.html" in said
    assert (tmp_path / "dossier.html").stat().st_mode & 0o077 == 0  # a minor's file: its writer's only

    text = text_of(document)
    assert '<html lang="fr">' in document and "@media print" in document
    assert not EXTERNAL.search(document)  # nothing fetched from elsewhere: the file stands alone
    # Identity, référent, the collège's avis and comment, the interview, its report and advice, the lycée avis.
    for expected in (
        "Martin", "Léa", "3e B", "Collège Voltaire (0752536Z)", "Claire Dupont — claire.dupont@ac-paris.fr",
        "Assez favorable", "Motivée, à encourager.", "Lycée professionnel Théophile Gautier (0752845K)",
        "Très satisfaisante", "Visiter l'atelier lors des portes ouvertes.",
    ):
        assert expected in text, expected
    # The bonus, per vœu and in total.
    assert "Bonus total : 2 500 points" in text and "Favorable" in text
    # The timeline: every step, when (Paris), who, what.
    timeline = text[text.index("5. Historique complet"):text.index("6. Consultations")]
    for label in ("Inscription au dispositif", "Avis du collège", "Entretien programmé", "Entretien tenu", "Avis du lycée"):
        assert label in timeline, label
    assert "principal-0752536Z (principal(e) du collège, Collège Voltaire)" in timeline
    assert "conseils : Visiter l'atelier lors des portes ouvertes." in timeline
    assert re.search(r"\d\d/\d\d/\d{4} à \d\d:\d\d — Inscription au dispositif", timeline)
    # The access log, this copy's own read included.
    consulted = text[text.index("6. Consultations"):text.index("7. Vos droits")]
    assert "dsden-durand" in consulted and "chronologie d'audit" in consulted
    assert "dsden-martin" in consulted and "copie pour la famille" in consulted and "commande du rectorat" in consulted
    # The family's rights, and whom to ask.
    rights = text[text.index("7. Vos droits"):]
    for right in ("droit d'accès", "droit de rectification", "droit à l'effacement", "droit à la limitation",
                  "droit d'opposition", "délégué à la protection des données", "CNIL"):
        assert right in rights, right

    assert accesses(passpro, LEA)[-1] == ("dsden-martin", "rectorat", "", "scoring", "copie pour la famille", "cli")


def test_after_an_erasure_the_copy_shows_the_personal_fields_as_erased_and_keeps_the_bonus(
    passpro, registration, evaluation, monkeypatch, capsys, tmp_path
):
    journey(passpro, registration, evaluation)
    keystore = passpro.settings("scoring").open_keystore()
    try:
        assert keystore.destroy(CAMPAIGN, LEA)
    finally:
        keystore.close()
    code, document, said = student_file(passpro, monkeypatch, capsys, tmp_path, LEA)
    assert code == 0, said
    assert "données personnelles effacées" in said
    text = text_of(document)
    assert "Données personnelles effacées" in text and "[effacé]" in text
    for gone in ("Martin", "Léa", "3e B", "Claire Dupont", "Motivée", "portes ouvertes"):
        assert gone not in document, gone
    assert "Bonus total : 2 500 points" in text and "Avis du lycée" in text


def test_student_file_refuses_a_bad_ine_or_an_unknown_student_in_french_and_logs_nothing(
    passpro, registration, evaluation, monkeypatch, capsys, tmp_path
):
    journey(passpro, registration, evaluation)
    for args, reason in (
        (("12345",), "passpro student-file :"),
        ((NOE,), f"aucun élève {NOE} dans la campagne {CAMPAIGN}"),
        ((LEA, "--campaign", "hier"), "passpro student-file :"),
    ):
        code, document, said = student_file(passpro, monkeypatch, capsys, tmp_path, *args)
        assert code == 2 and reason in said and document == "", args
    assert cli(passpro, monkeypatch, "student-file", LEA, "--out", str(tmp_path / "absent" / "d.html")) == 2
    assert "n'existe pas" in capsys.readouterr().err
    assert access_keys(passpro) == {}


def test_the_dossier_page_is_the_same_document_for_the_rectorat_only_and_is_logged(
    passpro, registration, evaluation, scoring
):
    journey(passpro, registration, evaluation)
    wait_for_scoring(scoring, [LEA])
    for role, uai in (("principal", COLLEGE), ("proviseur", LYCEE), ("lycee_staff", LYCEE)):
        signed_in(scoring, passpro, "scoring", role, uai)
        assert scoring.get(f"/eleves/{LEA}/dossier").status_code == 403
    signed_in(scoring, passpro, "scoring", "rectorat", None, "dsden-durand")
    assert scoring.get(f"/eleves/{NOE}/dossier").status_code == 404
    assert access_keys(passpro) == {}

    student_page = scoring.get(f"/eleves/{LEA}")
    assert f'href="/eleves/{LEA}/dossier"' in student_page.text
    page = scoring.get(f"/eleves/{LEA}/dossier")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = text_of(page.text)
    assert "copie pour la famille" in text and "Visiter l'atelier lors des portes ouvertes." in text
    assert "7. Vos droits" in text and "Bonus total : 2 500 points" in text
    assert not EXTERNAL.search(page.text)
    # Strict CSP kept: the inline print CSS is allowed by its hash alone, never by 'unsafe-inline'.
    policy = page.headers["content-security-policy"]
    [style] = re.findall(r"<style>(.*?)</style>", page.text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'self' 'sha256-{digest}'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and page.headers["cache-control"] == "no-store"
    assert accesses(passpro, LEA) == [
        ("dsden-durand", "rectorat", "", "scoring", "chronologie d'audit", "page"),
        ("dsden-durand", "rectorat", "", "scoring", "copie pour la famille", "page"),
    ]


def test_the_style_sources_allow_exactly_the_documents_inline_styles():
    html = "<style>a{}</style><p>x</p><style>\nb{}\n</style>"
    expected = [base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in ("a{}", "\nb{}\n")]
    assert family_copy.style_sources(html) == " ".join(f"'sha256-{d}'" for d in expected)


# --- the families' information notice --------------------------------------------------------------------


def test_the_information_notice_answers_anyone_in_french_and_every_college_page_links_to_it(passpro, registration):
    page = registration.get("/information-familles")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert not EXTERNAL.search(page.text) and "<style" not in page.text and " style=" not in page.text
    text = text_of(page.text)
    for expected in (
        "Information des familles", "nom, prénom, identifiant national (INE), classe", "adulte référent",
        "bref commentaire", "compte rendu", "conseils", "bonus", "mission d'intérêt public", "Affelnet",
        "collège d'origine", "rectorat de Paris", "délai de recours (deux mois)", "archivée", "chiffrées",
        "effaçables", "droit d'accès", "droit de rectification", "droit à l'effacement", "droit à la limitation",
        "droit d'opposition", "CNIL", "un bonus de 2 500 points",
    ):
        assert expected in text, expected
    signed_out = registration.get("/connexion")
    assert 'href="/information-familles"' in signed_out.text
    signed_in(registration, passpro, "registration", "principal", COLLEGE)
    assert 'href="/information-familles"' in registration.get("/").text
    assert "Se déconnecter" in registration.get("/information-familles").text


def test_building_the_content_is_pure_and_writes_paris_time():
    assert family_copy.paris_time(f"{YEAR}-03-15T11:05:00+00:00") == f"15/03/{YEAR} à 12:05"
    assert family_copy.paris_time(f"{YEAR}-07-01T08:00:00+00:00") == f"01/07/{YEAR} à 10:00"
    assert family_copy.paris_time(None) == "—"


def test_the_content_folds_the_timeline_as_every_service_does_and_masks_a_forgotten_student():
    from datetime import UTC, datetime

    from event_factories import (
        INE, RECTORAT, T0, college_avis, held, lycee_avis, make_event, registered, sample_payloads, scheduled,
    )
    from services.records.timeline import Cut, student_report
    from shared.contracts.reference import default_reference_text, parse_reference
    from shared.contracts.streams import LoggedEvent

    samples = sample_payloads()
    payloads = [registered(), college_avis("reserve"), scheduled(), held(), lycee_avis("favorable"),
                samples["StudentWithdrawn"], samples["StudentReinstated"]]
    history = [
        LoggedEvent(make_event(p, occurred_at=T0), "s", f"{n}-0", n) for n, p in enumerate(payloads, start=1)
    ]
    opened = make_event(samples["CampaignOpened"], actor=RECTORAT)
    reference = parse_reference(default_reference_text())
    names = {e.uai: e.name for e in reference.establishments}

    def content(history):
        report = student_report(
            ine=INE, campaign=CAMPAIGN, as_of=None, cut=Cut(), history=history, rectorat=[opened],
            establishments=names, show_time=family_copy.paris_time,
        )
        access = {"at": f"{YEAR}-03-02T09:00:00+00:00", "user_id": "dsden", "role": "rectorat", "uai": "",
                  "service": "scoring", "what": "copie pour la famille", "channel": "page", "position": "1-0"}
        return family_copy.build(
            report, [access], reference, generated_at=datetime(YEAR, 3, 2, 9, tzinfo=UTC), generated_by="dsden"
        )

    doc = content(history)
    assert doc["generated_at"] == f"02/03/{YEAR} à 10:00" and not doc["erased"]
    assert doc["identity"]["last_name"] == "Martin" and doc["identity"]["college"] == "Collège Voltaire (0752536Z)"
    assert doc["identity"]["status"] == "Inscrit(e) au dispositif"
    assert doc["college_avis"]["avis"] == "Réservé" and "motivée" in doc["college_avis"]["comment"]
    [interview] = doc["interviews"]
    assert interview["status"] == "Tenu" and interview["advice"] == "Visiter l'atelier lors des portes ouvertes."
    assert interview["lycee_avis"] == "Favorable" and interview["bonus_points"] == 2500
    assert doc["total_bonus_points"] == 2500 and len(doc["timeline"]) == 7
    assert doc["timeline"][0]["when"] == f"02/03/{YEAR} à 10:00"
    assert doc["accesses"][0]["establishment"] == "Rectorat de Paris"

    forgotten = LoggedEvent(make_event(samples["StudentForgotten"], occurred_at=T0), "s", "8-0", 8)
    doc = content([*history, forgotten])
    assert doc["erased"] and doc["identity"]["last_name"] == "[effacé]" and doc["identity"]["referent"].startswith("[effacé]")
    assert doc["college_avis"]["comment"] == "[effacé]" and doc["interviews"][0]["advice"] == "[effacé]"
    assert doc["timeline"][-1]["label"] == "Effacement des données personnelles"
    assert doc["total_bonus_points"] == 2500  # the bonus still stands
