"""What a student sees of their own file (SPEC §6): `GET /api/me` answers it, the /eleve pages show it.

A pure function of the student's file, the reference data and the campaign's bonus: identity, référent, the
collège avis once given, the steps of Passpro in order with what comes next, each interview with its lycée
(address, nearest stops, a journey planner with the lycée as destination, never a home address), formation,
date and time, mode, status, checklist, and once held the report, the lycée avis and the bonus of that vœu.
Words for a fifteen-year-old: « tu », short sentences, the seed's vocabulary.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.reference import TRANSIT_PLANNER_URL, ReferenceData, journey_url
from shared.domain.bonus import total_bonus_points, voeu_bonuses
from shared.domain.student_file import Interview, StudentFile
from shared.fr.formats import paris
from shared.fr.transit import stop_label

STATUS_ORDER = {"scheduled": 0, "held": 1, "cancelled": 2}
STEP_STATES = ("done", "current", "todo")


def _interview_order(interview: Interview) -> tuple[int, str, str]:
    return (STATUS_ORDER.get(interview.status, 3), interview.scheduled_at.isoformat() if interview.scheduled_at else "",
            interview.interview_id)


def lycee_of(reference: ReferenceData, uai: str) -> dict[str, Any]:
    """The lycée as the student needs it to get there: name, address, nearest stops, a journey planner."""
    lycee = reference.get(uai)
    if lycee is None:  # not in the reference data any more: its code, and nothing invented
        return {"uai": uai, "name": uai, "address": None, "coordinates": None, "access": [], "journey_url": None,
                "transit_planner_url": TRANSIT_PLANNER_URL}
    return {
        "uai": lycee.uai,
        "name": lycee.name,
        "address": lycee.address,
        "coordinates": lycee.coordinates.model_dump(mode="json") if lycee.coordinates else None,
        "access": [{**stop.model_dump(mode="json"), "label": stop_label(stop)} for stop in lycee.access],
        "journey_url": journey_url(lycee),
        "transit_planner_url": TRANSIT_PLANNER_URL,
    }


def formation_of(reference: ReferenceData, lycee_uai: str, code: str) -> dict[str, Any]:
    lycee = reference.lycee(lycee_uai)
    offered = next((f for f in lycee.formations if f.code == code), None) if lycee else None
    return {"code": code, "label": offered.label if offered else code}


def room_of(file: StudentFile, interview: Interview, reference: ReferenceData) -> str | None:
    """Where a distanciel interview is followed: at the student's collège, with its equipment (the référent
    checks it, SPEC §1): the room the collège gave when scheduling it (InterviewScheduled.room), else (a v1
    event, a slot booked without one) the référent tells which one."""
    if interview.mode != "distanciel":
        return None
    college = reference.get(file.college_uai) if file.college_uai else None
    where = college.name if college else "ton collège"
    if interview.room:
        return f"Au collège ({where}), salle : {interview.room}, avec l'ordinateur préparé par ton référent."
    return f"Dans une salle de ton collège ({where}), avec l'ordinateur préparé par ton référent : il te dit laquelle."


def slot_place_of(interview: Interview, slot_places: dict[str, str]) -> str | None:
    """The place of the slot the interview is booked on (its room at the lycée, or how the video link is given:
    SPEC §7); None for a free time (or a slot the view does not hold yet)."""
    return slot_places.get(interview.slot_id) if interview.slot_id else None


def interview_view(
    file: StudentFile, interview: Interview, reference: ReferenceData, bonuses: dict,
    slot_places: dict[str, str] | None = None,
) -> dict:
    voeu = interview.voeu
    held = interview.status == "held"
    latest = file.latest_lycee_avis(*voeu) if held else None
    preparation = file.preparations.get(interview.interview_id)
    letter = file.letter_for(*voeu)
    return {
        "interview_id": interview.interview_id,
        "status": interview.status,
        "lycee": lycee_of(reference, interview.lycee_uai),
        "formation": formation_of(reference, *voeu),
        "scheduled_at": interview.scheduled_at.isoformat() if interview.scheduled_at else None,
        "scheduled_at_text": paris(interview.scheduled_at, "day") + " à " + paris(interview.scheduled_at, "time")
        if interview.scheduled_at else None,
        "mode": interview.mode,
        "room": room_of(file, interview, reference),
        "slot_place": slot_place_of(interview, slot_places or {}),
        "held_at": interview.held_at.isoformat() if interview.held_at else None,
        "report": interview.report.model_dump(mode="json") if held and interview.report else None,
        "lycee_avis": latest.avis if latest else None,
        "bonus_points": bonuses.get(voeu) if held and latest else None,
        "letter": {"ready": letter.ready, "saved_at": letter.saved_at.isoformat()} if letter else None,
        "preparation": {
            "itinerary_ready": preparation.itinerary_ready,
            "letter_printed": preparation.letter_printed,
            "materials_ready": preparation.materials_ready,
            "equipment_ready": preparation.equipment_ready,
            "ready": preparation.ready(interview.mode),
        } if preparation else None,
    }


def steps(file: StudentFile, interviews: list[dict]) -> list[dict[str, str]]:
    """Passpro's steps for the student, in order, each done, current (the next thing to do) or to do."""
    active = [i for i in interviews if i["status"] == "scheduled"]
    held = [i for i in interviews if i["status"] == "held"]
    answered = [i for i in held if i["lycee_avis"]]
    letters_ready = bool(active) and all(i["letter"] and i["letter"]["ready"] for i in active)
    prepared = bool(active) and all(i["preparation"] and i["preparation"]["ready"] for i in active)
    rows = [
        ("formations", "Découvrir les formations et les métiers", True,
         "Regarde les formations, les métiers et où sont les lycées."),
        ("inscription", "Être inscrit(e) par ton référent", file.registered,
         "Demande à ton référent de t'inscrire."),
        ("avis_college", "L'avis de ton collège", file.college_avis is not None or bool(held),
         "Ton principal donne son avis avant tes entretiens."),
        ("entretien_prevu", "Avoir un rendez-vous au lycée", bool(interviews),
         "Demande à ton référent de t'inscrire à un entretien dans le lycée qui t'intéresse."),
        ("lettre", "Remplir ta lettre de motivation", letters_ready or (bool(held) and not active),
         "Remplis ta lettre de motivation et imprime-la : tu dois l'apporter à l'entretien."),
        ("preparation", "Préparer ton entretien", prepared or (bool(held) and not active),
         "Prépare ton itinéraire, ta lettre imprimée, un stylo et des feuilles."),
        ("entretien", "Passer ton entretien", bool(held) and not active,
         "Va à ton entretien : pose tes questions sur la formation et les métiers."),
        ("resultat", "Lire le compte rendu et l'avis du lycée", bool(held) and len(answered) == len(held) and not active,
         "Lis les conseils du lycée et continue à réfléchir à ton projet."),
    ]
    out, current_given = [], False
    for key, label, done, todo in rows:
        state = "done" if done else ("todo" if current_given else "current")
        current_given = current_given or not done
        out.append({"id": key, "label": label, "state": state, "todo": todo})
    return out


def next_step_text(file: StudentFile, step_list: list[dict[str, str]]) -> str:
    if file.withdrawn:
        return "Tu n'es plus inscrit(e) à Passpro. Parles-en avec ton référent si tu as une question."
    current = next((s for s in step_list if s["state"] == "current"), None)
    if current is None:
        return "Tout est fait ! Continue à réfléchir à ton projet avec ton référent et ta famille."
    return current["todo"]


def student_space(
    file: StudentFile, reference: ReferenceData, bonus_points: int, slot_places: dict[str, str] | None = None
) -> dict[str, Any]:
    """GET /api/me's answer (and the pages' context) for the student's own file."""
    bonuses = {(b.lycee_uai, b.formation_code): b.bonus_points for b in voeu_bonuses(file, bonus_points)}
    interviews = [
        interview_view(file, i, reference, bonuses, slot_places) for i in sorted(file.interviews.values(), key=_interview_order)
    ]
    step_list = steps(file, interviews)
    college = reference.get(file.college_uai) if file.college_uai else None
    return {
        "ine": file.ine,
        "campaign": file.campaign,
        "first_name": file.first_name,
        "last_name": file.last_name,
        "class_name": file.class_name,
        "college": {"uai": file.college_uai, "name": college.name if college else file.college_uai},
        "status": "withdrawn" if file.withdrawn else "active",
        "referent": {"name": file.referent.name, "email": file.referent.email} if file.referent else None,
        "college_avis": file.college_avis,
        "college_comment": file.college_comment if file.college_avis else None,
        "steps": step_list,
        "next_step": next_step_text(file, step_list),
        "interviews": interviews,
        "total_bonus_points": total_bonus_points(list(voeu_bonuses(file, bonus_points))),
        "version": file.version,
    }
