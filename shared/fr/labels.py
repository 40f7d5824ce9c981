"""Every French label of a domain code, written once: pages, the family copy, the audit timeline and the CLI
read them here. A label starts with a capital (a table cell, a badge); prose lowers it where it needs to."""

from __future__ import annotations

ROLE_LABELS = {
    "principal": "Principal(e) du collège",
    "referent": "Référent(e)",
    "lycee_staff": "Équipe du lycée",
    "proviseur": "Proviseur(e)",
    "rectorat": "Rectorat",
    "eleve": "Élève",
}
COLLEGE_AVIS_LABELS = {"reserve": "Réservé", "assez_favorable": "Assez favorable", "favorable": "Favorable"}
LYCEE_AVIS_LABELS = {"reserve": "Réservé", "favorable": "Favorable"}
ASSESSMENT_LABELS = {
    "insuffisante": "Insuffisante",
    "fragile": "Fragile",
    "satisfaisante": "Satisfaisante",
    "tres_satisfaisante": "Très satisfaisante",
}
MODE_LABELS = {"presentiel": "Présentiel", "distanciel": "Distanciel"}
# The same modes inside a sentence: « l'entretien a lieu en présentiel / à distance ».
MODE_PROSE = {"presentiel": "en présentiel", "distanciel": "à distance"}
INTERVIEW_STATUS_LABELS = {"scheduled": "Prévu", "held": "Tenu", "cancelled": "Annulé"}
# Where a student's file was read from (the access log's channels).
CHANNEL_LABELS = {"api": "application (API)", "page": "page web", "cli": "commande du rectorat"}
CANCEL_REASONS = {"reporte": "Entretien reporté", "absent": "Élève absent", "desistement": "Désistement de l'élève"}
EVENT_LABELS = {
    "CampaignOpened": "Ouverture de la campagne",
    "CampaignCalendarSet": "Calendrier de la campagne",
    "StudentRegistered": "Inscription au dispositif",
    "ReferentReassigned": "Changement de référent",
    "InterviewScheduled": "Entretien programmé",
    "InterviewCancelled": "Entretien annulé",
    "CollegeAvisGiven": "Avis du collège",
    "StudentWithdrawn": "Retrait du dispositif",
    "StudentReinstated": "Réintégration dans le dispositif",
    "InterviewHeld": "Entretien tenu",
    "LyceeAvisGiven": "Avis du lycée",
    "StudentForgotten": "Effacement des données personnelles",
    "StudentAccessIssued": "Code d'accès à l'espace élève délivré",
    "MotivationLetterSaved": "Lettre de motivation enregistrée",
    "InterviewPreparationUpdated": "Préparation de l'entretien mise à jour",
    "InterviewRescheduled": "Entretien déplacé",
    "InterviewSlotOpened": "Créneau d'entretien ouvert",
    "InterviewSlotClosed": "Créneau d'entretien fermé",
    "InterviewReportCorrected": "Compte rendu d'entretien corrigé",
}
# The preparation checklist of an interview (the seed's list; the equipment only for a distanciel one).
PREPARATION_LABELS = {
    "itinerary_ready": "J'ai préparé mon itinéraire jusqu'au lycée",
    "letter_printed": "J'ai imprimé ma lettre de motivation",
    "materials_ready": "J'ai un stylo et des feuilles pour prendre des notes",
    "equipment_ready": "La salle et le matériel du collège sont prêts (entretien à distance)",
}

# A page's 503: the API's own message speaks to programs (it names `event_id`); a person reads this one.
UNAVAILABLE_PAGE = (
    "Le service est momentanément indisponible ; votre saisie a peut-être été enregistrée : "
    "vérifiez-la avant de la refaire."
)

