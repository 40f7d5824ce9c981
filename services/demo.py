"""Demo data for `passpro up --demo`: students at every step of the process, written through the APIs.

Every request carries an event id derived from the student and the step, so
loading the demo twice stores nothing twice: the second run gets the original
answers (200), or `event_id_reused` on another day, whose dates differ.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from shared.contracts.reference import ReferenceData, default_reference_text, parse_reference
from shared.runtime.demo_users import DEMO_STUDENTS as STUDENTS
from shared.runtime.demo_users import demo_establishments, demo_ine, demo_users

DEMO_NAMESPACE = uuid.UUID("6f1b0a52-6d1e-4d0b-9a53-2f3c1e0d7a11")

# A guided motivation letter as a student of 3e might write it (the template's questions, shared/contracts/letter.py).
LETTER_ANSWERS = {
    "pourquoi": "J'aime le contact avec les gens et j'aimerais travailler dans un magasin ou à l'accueil d'une entreprise.",
    "recherches": "Je suis allé(e) au CDI, j'ai lu la fiche de l'ONISEP et j'ai visité le lycée aux portes ouvertes.",
    "metier": "On conseille les clients, on s'occupe de la caisse et des rayons. Après, on peut faire un BTS.",
    "qualites": "Je suis souriant(e), patient(e) et j'aime rendre service.",
    "trajet": "Je prends le métro, environ 30 minutes depuis chez moi.",
    "questions": "Est-ce qu'il y a beaucoup de stages ? Dans quels magasins ?",
}

def _event_id(ine: str, step: str) -> str:
    return str(uuid.uuid5(DEMO_NAMESPACE, f"{ine}:{step}"))


def _interview_id(client: httpx.Client, urls: dict[str, str], token: str, position: str | None) -> str:
    """The student's scheduled interview, read from their own space once it shows the scheduling (the id is
    made by the service)."""
    params = {"min_position": position} if position else {}
    me = client.get(urls["registration"] + "/api/me", params=params, headers={"Authorization": f"Bearer {token}"})
    me.raise_for_status()
    return next(i["interview_id"] for i in me.json()["interviews"] if i["status"] == "scheduled")


def load_demo(settings, urls: dict[str, str], reference: ReferenceData | None = None) -> dict[str, str]:
    """Write the demo students through the running services; return a token per demo user."""
    from services.cli.common import make_token

    reference = reference or parse_reference(default_reference_text())
    colleges, lycees = demo_establishments(reference)
    tokens = {
        f"{role} {uai or ''}".strip(): make_token(settings, role=role, uai=uai, user=user, ttl=7 * 86400)
        for user, role, uai in demo_users(reference)
    }
    students = {}  # the students' own writes (their letter, their checklist); not printed: one click away
    for n in range(len(STUDENTS)):
        college = colleges[n % len(colleges)]
        students[f"eleve {demo_ine(n)}"] = make_token(
            settings, role="eleve", uai=college.uai, user=f"eleve.{demo_ine(n)}", ttl=7 * 86400, ine=demo_ine(n)
        )
    now = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    with httpx.Client(timeout=30) as client:

        def post(service: str, path: str, who: str, body: dict, ine: str, step: str) -> str | None:
            """The write's position in its service's stream (None when an earlier run stored it)."""
            body = {**body, "event_id": _event_id(ine, step)}
            token = tokens.get(who) or students[who]
            r = client.post(urls[service] + path, json=body, headers={"Authorization": f"Bearer {token}"})
            already_loaded = r.status_code == 409 and r.json().get("error") == "event_id_reused"
            if r.status_code not in (200, 201) and not already_loaded:
                raise RuntimeError(f"demo step {step} for {ine} refused: {r.status_code} {r.text}")
            return None if already_loaded else r.json()["positions"]["service"]

        # The campaign's calendar (SPEC §7), around today so every demo step is in its phase: the band on every page
        post("scoring", f"/api/campaigns/{settings.campaign}/calendar", "rectorat", {
            "registrations_until": (now + timedelta(days=30)).isoformat(),
            "interviews_from": (now - timedelta(days=60)).isoformat(),
            "interviews_until": (now + timedelta(days=60)).isoformat(),
            "lycee_avis_until": (now + timedelta(days=75)).isoformat(),
        }, "calendar", "calendar")
        for n, (last, first, klass, steps) in enumerate(STUDENTS):
            ine = demo_ine(n)
            college = colleges[n % len(colleges)]
            lycee = lycees[n % len(lycees)]
            formation = lycee.formations[0]
            principal, referent = f"principal {college.uai}", f"referent {college.uai}"
            student = f"eleve {ine}"
            staff, proviseur = f"lycee_staff {lycee.uai}", f"proviseur {lycee.uai}"
            voeu = {"lycee_uai": lycee.uai, "formation_code": formation.code}
            held_date = now - timedelta(days=3 + n)
            position = None
            for step in steps:
                match step:
                    case "register":
                        post("registration", "/api/students", principal, {
                            "student_ine": ine, "campaign": settings.campaign, "college_uai": college.uai,
                            "last_name": last, "first_name": first, "class_name": klass,
                            "referent": {"user_id": f"referent.{college.uai}", "name": "Mme Garnier",
                                         "email": f"referent.{college.uai.lower()}@ac-paris.fr"},
                        }, ine, step)
                    case "college_avis":
                        avis = ["favorable", "assez_favorable", "reserve"][n % 3]
                        post("registration", f"/api/students/{ine}/college-avis", principal, {
                            "college_uai": college.uai, "avis": avis,
                            "comment": "Élève impliqué, projet réfléchi, s'est renseigné aux portes ouvertes.",
                        }, ine, step)
                    case "schedule" | "schedule_remote":
                        remote = step == "schedule_remote"
                        position = post("registration", f"/api/students/{ine}/interviews", referent, {
                            **voeu, "scheduled_at": (held_date if "held" in steps else now + timedelta(days=10 + n)).isoformat(),
                            "mode": "distanciel" if remote else "presentiel", "remote_equipment_ready": remote,
                            **({"room": "Salle 12 (salle informatique, 1er étage)"} if remote else {}),
                        }, ine, step)
                    case "cancel":
                        post("registration", f"/api/students/{ine}/interviews/cancel", referent,
                             {**voeu, "reason": "reporte"}, ine, step)
                    case "held":
                        post("evaluation", f"/api/students/{ine}/interviews/held", staff, {
                            **voeu, "held_at": held_date.isoformat(),
                            "report": {"motivation": "satisfaisante", "chances_of_success": "fragile",
                                       "advice": "Consolider les bases en mathématiques ; visiter l'atelier."},
                        }, ine, step)
                    case "favorable" | "reserve":
                        post("evaluation", f"/api/students/{ine}/lycee-avis", proviseur,
                             {**voeu, "avis": step}, ine, step)
                    case "withdraw":
                        post("registration", f"/api/students/{ine}/withdrawal", principal,
                             {"reason": "Projet d'orientation en voie générale"}, ine, step)
                    case "letter_draft" | "letter_ready":
                        ready = step == "letter_ready"
                        answers = LETTER_ANSWERS if ready else {k: LETTER_ANSWERS[k] for k in ("pourquoi", "recherches")}
                        post("registration", "/api/me/letters", student,
                             {**voeu, "answers": answers, "ready": ready}, ine, step)
                    case "prepared":
                        post("registration", f"/api/me/interviews/{_interview_id(client, urls, students[student], position)}/preparation",
                             student, {"itinerary_ready": True, "letter_printed": True, "materials_ready": True},
                             ine, step)
                    case "second_voeu":
                        second = {"lycee_uai": lycee.uai, "formation_code": lycee.formations[1].code}
                        post("registration", f"/api/students/{ine}/interviews", referent, {
                            **second, "scheduled_at": (now + timedelta(days=20)).isoformat(), "mode": "presentiel",
                        }, ine, step)
        # Each demo lycée's slots (SPEC §7), a week from now for its first formation: the référents book on them.
        for lycee in lycees:
            for k in range(3):
                post("evaluation", "/api/slots", f"lycee_staff {lycee.uai}", {
                    "lycee_uai": lycee.uai, "formation_code": lycee.formations[0].code,
                    "starts_at": (now + timedelta(days=7, hours=5, minutes=30 * k)).isoformat(), "duration_minutes": 30,
                    "capacity": 4, "mode": "presentiel", "place": "Salle 12, bâtiment B",
                }, lycee.uai, f"slot-{k}")
    return tokens
