"""Who the demo users are (`passpro up --demo`): the demo data writes as them, the sign-in page offers them."""

from __future__ import annotations

from shared.contracts.reference import Establishment, ReferenceData


def demo_establishments(reference: ReferenceData) -> tuple[list[Establishment], list[Establishment]]:
    """The two collèges and the two lycées (with at least two formations) the demo uses."""
    colleges = [e for e in reference.establishments if e.type == "college"][:2]
    lycees = [e for e in reference.establishments if e.type == "lycee" and len(e.formations) >= 2][:2]
    return colleges, lycees


def demo_users(reference: ReferenceData) -> list[tuple[str, str, str | None]]:
    """(user id, role, uai) of every demo user."""
    colleges, lycees = demo_establishments(reference)
    users: list[tuple[str, str, str | None]] = [("rectorat.demo", "rectorat", None)]
    for c in colleges:
        users += [(f"principal.{c.uai}", "principal", c.uai), (f"referent.{c.uai}", "referent", c.uai)]
    for lycee in lycees:
        users += [(f"equipe.{lycee.uai}", "lycee_staff", lycee.uai), (f"proviseur.{lycee.uai}", "proviseur", lycee.uai)]
    return users


# The demo students (`passpro up --demo` loads them, services/demo.py): (last name, first name, class, the steps
# each goes through). Here beside the demo staff so the student's sign-in page offers them in one click too.
DEMO_STUDENTS: list[tuple[str, str, str, list[str]]] = [
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
    ("Garcia", "Sofia", "3e A", ["register", "college_avis", "schedule", "letter_draft"]),
    ("Roux", "Noah", "3e B", ["register", "college_avis", "schedule", "letter_ready", "prepared"]),
]

# Where each demo student stands, as the one-click sign-in says it (the last step that applies).
DEMO_STEP_LABELS = {
    "register": "inscrit(e), sans avis du collège",
    "college_avis": "avis du collège donné",
    "schedule": "entretien prévu",
    "schedule_remote": "entretien à distance prévu",
    "letter_draft": "lettre de motivation commencée",
    "letter_ready": "lettre prête",
    "prepared": "lettre prête, entretien préparé",
    "held": "entretien passé, avis du lycée attendu",
    "favorable": "avis favorable du lycée : 2 500 points",
    "reserve": "avis réservé du lycée",
    "withdraw": "retiré(e) du dispositif",
    "cancel": "entretien annulé",
    "second_voeu": "bonus obtenu, deuxième entretien prévu",
}


def demo_ine(n: int) -> str:
    return f"{270000100 + n:09d}DM"


def demo_students(reference: ReferenceData) -> list[dict[str, str]]:
    """Each demo student: user id, INE, collège, name and where they stand (the one-click sign-in's choices)."""
    colleges, _ = demo_establishments(reference)
    students = []
    for n, (last, first, klass, steps) in enumerate(DEMO_STUDENTS):
        college = colleges[n % len(colleges)]
        ine = demo_ine(n)
        students.append({
            "user_id": f"eleve.{ine}", "ine": ine, "uai": college.uai, "name": f"{first} {last}",
            "class_name": klass, "college": college.name, "where": DEMO_STEP_LABELS[steps[-1]],
        })
    return students
