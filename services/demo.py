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
from shared.runtime.demo_users import demo_establishments, demo_users

DEMO_NAMESPACE = uuid.UUID("6f1b0a52-6d1e-4d0b-9a53-2f3c1e0d7a11")

STUDENTS = [
    # (last name, first name, class, the steps it goes through)
    ("Martin", "Léa", "3e A", ["register"]),
    ("Bernard", "Hugo", "3e A", ["register", "college_avis"]),
    ("Thomas", "Inès", "3e B", ["register", "college_avis", "schedule"]),
    ("Petit", "Lucas", "3e B", ["register", "college_avis", "schedule", "held"]),
    ("Robert", "Chloé", "3e C", ["register", "schedule", "held"]),  # held without the collège avis
    ("Richard", "Adam", "3e C", ["register", "college_avis", "schedule", "held", "favorable"]),
    ("Durand", "Jade", "3e D", ["register", "college_avis", "schedule", "held", "reserve"]),
    ("Dubois", "Nathan", "3e D", ["register", "college_avis", "schedule", "held", "favorable", "reserve"]),
    ("Moreau", "Louise", "3e E", ["register", "college_avis", "withdraw"]),
    ("Laurent", "Yanis", "3e E", ["register", "college_avis", "schedule_remote"]),
    ("Simon", "Manon", "3e F", ["register", "college_avis", "schedule", "cancel"]),
    ("Michel", "Rayan", "3e F", ["register", "college_avis", "schedule", "held", "favorable", "second_voeu"]),
]


def demo_ine(n: int) -> str:
    return f"{270000100 + n:09d}DM"


def _event_id(ine: str, step: str) -> str:
    return str(uuid.uuid5(DEMO_NAMESPACE, f"{ine}:{step}"))


def load_demo(settings, urls: dict[str, str], reference: ReferenceData | None = None) -> dict[str, str]:
    """Write the demo students through the running services; return a token per demo user."""
    from services.cli.common import make_token

    reference = reference or parse_reference(default_reference_text())
    colleges, lycees = demo_establishments(reference)
    tokens = {
        f"{role} {uai or ''}".strip(): make_token(settings, role=role, uai=uai, user=user, ttl=7 * 86400)
        for user, role, uai in demo_users(reference)
    }
    now = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    with httpx.Client(timeout=30) as client:

        def post(service: str, path: str, who: str, body: dict, ine: str, step: str) -> None:
            body = {**body, "event_id": _event_id(ine, step)}
            r = client.post(urls[service] + path, json=body, headers={"Authorization": f"Bearer {tokens[who]}"})
            already_loaded = r.status_code == 409 and r.json().get("error") == "event_id_reused"
            if r.status_code not in (200, 201) and not already_loaded:
                raise RuntimeError(f"demo step {step} for {ine} refused: {r.status_code} {r.text}")

        for n, (last, first, klass, steps) in enumerate(STUDENTS):
            ine = demo_ine(n)
            college = colleges[n % len(colleges)]
            lycee = lycees[n % len(lycees)]
            formation = lycee.formations[0]
            principal, referent = f"principal {college.uai}", f"referent {college.uai}"
            staff, proviseur = f"lycee_staff {lycee.uai}", f"proviseur {lycee.uai}"
            voeu = {"lycee_uai": lycee.uai, "formation_code": formation.code}
            held_date = now - timedelta(days=3 + n)
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
                        post("registration", f"/api/students/{ine}/interviews", referent, {
                            **voeu, "scheduled_at": (held_date if "held" in steps else now + timedelta(days=10 + n)).isoformat(),
                            "mode": "distanciel" if remote else "presentiel", "remote_equipment_ready": remote,
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
                    case "second_voeu":
                        second = {"lycee_uai": lycee.uai, "formation_code": lycee.formations[1].code}
                        post("registration", f"/api/students/{ine}/interviews", referent, {
                            **second, "scheduled_at": (now + timedelta(days=20)).isoformat(), "mode": "presentiel",
                        }, ine, step)
    return tokens
