"""The family's copy (issue 5): everything Passpro holds about one student, as a printable French document.

`build` is pure: from the student's audit report (`timeline.student_audit`, its timeline
and bonus), the access log and the reference data, it makes the document's content, every
date already written in Paris time. `render` puts it in `templates/dossier.html`, a
self-contained page (its print CSS inline, nothing fetched from elsewhere), so the same
file answers a family's access request by mail or on paper. After an erasure, the personal
fields read « [effacé] », as everywhere else.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.contracts.events import PAYLOAD_TYPES, Event
from shared.contracts.personal import ERASED
from shared.contracts.reference import ReferenceData
from shared.domain.student_file import StudentFile, fold, voeu_key
from shared.fr.formats import paris
from shared.fr.labels import (
    ASSESSMENT_LABELS,
    CANCEL_REASONS,
    CHANNEL_LABELS,
    COLLEGE_AVIS_LABELS,
    INTERVIEW_STATUS_LABELS,
    LYCEE_AVIS_LABELS,
    MODE_PROSE,
    PREPARATION_LABELS,
    ROLE_LABELS,
)
from shared.contracts.letter import default_letter_template

TEMPLATES = Path(__file__).parent / "templates"


def paris_time(moment: datetime | str | None) -> str:
    """« 12/05/2027 à 14:30 », Paris time: how the document writes every moment."""
    return paris(moment, "short", missing="—")


def _events(report: Mapping[str, Any]) -> list[tuple[Event, int]]:
    """The timeline's events again, to fold them into the student's file as every service does."""
    found = []
    for n, item in enumerate(report["timeline"], start=1):
        payload_type = PAYLOAD_TYPES[item["event_type"]]
        event = Event(
            event_id=item["event_id"],
            event_type=item["event_type"],
            schema_version=payload_type.SCHEMA_VERSION,
            occurred_at=item["occurred_at"],
            recorded_at=item["recorded_at"],
            campaign=report["campaign"],
            student_ine=report["ine"],
            actor=item["actor"],
            payload=payload_type.model_validate(item["payload"], context={"reading_log": True}),
        )
        found.append((event, item["student_version"] or n))
    return found


def _name(reference: ReferenceData, uai: str | None) -> str:
    found = reference.get(uai) if uai else None
    return found.name if found else (uai or "—")


def _formation(reference: ReferenceData, lycee_uai: str, code: str) -> str:
    lycee = reference.lycee(lycee_uai)
    found = next((f for f in lycee.formations if f.code == code), None) if lycee else None
    return f"{found.label} ({code})" if found else code


def _who(actor: Mapping[str, Any], reference: ReferenceData) -> str:
    role = ROLE_LABELS.get(actor.get("role", ""), actor.get("role", "")).lower()
    place = f", {_name(reference, actor['uai'])}" if actor.get("uai") else ""
    return f"{actor.get('user_id', '')} ({role}{place})"


def _identity(file: StudentFile, reference: ReferenceData) -> dict[str, str]:
    referent = file.referent
    return {
        "last_name": file.last_name or "—",
        "first_name": file.first_name or "—",
        "class_name": file.class_name or "—",
        "college": f"{_name(reference, file.college_uai)} ({file.college_uai})" if file.college_uai else "—",
        "referent": f"{referent.name} — {referent.email}" if referent else "—",
        "status": "Retiré(e) du dispositif" if file.withdrawn else "Inscrit(e) au dispositif",
        "status_reason": file.status_reason or "",
    }


def _college_avis(file: StudentFile, timeline: list[Mapping[str, Any]], reference: ReferenceData) -> dict | None:
    if file.college_avis is None:
        return None
    given = next((e for e in reversed(timeline) if e["event_type"] == "CollegeAvisGiven"), None)
    return {
        "avis": COLLEGE_AVIS_LABELS.get(file.college_avis, file.college_avis),
        "comment": file.college_comment or "—",
        "when": paris_time(file.college_avis_at),
        "who": _who(given["actor"], reference) if given else "—",
    }


def _interviews(file: StudentFile, report: Mapping[str, Any], reference: ReferenceData) -> list[dict]:
    bonus = {voeu_key(v["lycee_uai"], v["formation_code"]): v["bonus_points"] for v in report["voeux"]}
    found = []
    ordered = sorted(file.interviews.values(), key=lambda i: (i.scheduled_at.isoformat() if i.scheduled_at else ""))
    for interview in ordered:
        key = voeu_key(interview.lycee_uai, interview.formation_code)
        latest = file.latest_lycee_avis(interview.lycee_uai, interview.formation_code)
        report_ = interview.report
        found.append(
            {
                "lycee": f"{_name(reference, interview.lycee_uai)} ({interview.lycee_uai})",
                "formation": _formation(reference, interview.lycee_uai, interview.formation_code),
                "scheduled_at": paris_time(interview.scheduled_at),
                "mode": MODE_PROSE.get(interview.mode or "", interview.mode or "—"),
                "status": INTERVIEW_STATUS_LABELS.get(interview.status, interview.status),
                "cancel_reason": CANCEL_REASONS.get(interview.cancel_reason or "", interview.cancel_reason or ""),
                "held_at": paris_time(interview.held_at) if interview.held_at else "",
                "motivation": ASSESSMENT_LABELS.get(report_.motivation, report_.motivation) if report_ else "",
                "chances": ASSESSMENT_LABELS.get(report_.chances_of_success, report_.chances_of_success) if report_ else "",
                "advice": report_.advice if report_ else "",
                "lycee_avis": LYCEE_AVIS_LABELS.get(latest.avis, latest.avis) if latest else "",
                "lycee_avis_at": paris_time(latest.occurred_at) if latest else "",
                "lycee_avis_by": latest.user_id if latest else "",
                "bonus_points": bonus.get(key, 0) if interview.status == "held" else None,
                "preparation": _preparation(file, interview),
            }
        )
    return found


def _preparation(file: StudentFile, interview) -> list[tuple[str, bool]] | None:
    """The interview's checklist as last ticked: each item and whether it is ticked; None if never ticked."""
    checklist = file.preparations.get(interview.interview_id)
    if checklist is None:
        return None
    names = [n for n in PREPARATION_LABELS if n != "equipment_ready" or interview.mode == "distanciel"]
    return [(PREPARATION_LABELS[n], bool(getattr(checklist, n))) for n in names]


def _letters(file: StudentFile, reference: ReferenceData, erased: bool) -> list[dict]:
    """Each vœu's guided motivation letter as last saved: its questions (the template's prompts) and answers."""
    template = default_letter_template()
    prompts = {q.id: q.prompt for q in template.questions}
    order = {q.id: n for n, q in enumerate(template.questions)}
    found = []
    for _, letter in sorted(file.letters.items()):
        answers = sorted(letter.answers.items(), key=lambda qa: (order.get(qa[0], len(order)), qa[0]))
        found.append(
            {
                "lycee": f"{_name(reference, letter.lycee_uai)} ({letter.lycee_uai})",
                "formation": _formation(reference, letter.lycee_uai, letter.formation_code),
                "state": "prête (lisible par le référent et le lycée)" if letter.ready else "brouillon",
                "saved_at": paris_time(letter.saved_at),
                "answers": [(prompts.get(q, q), text) for q, text in answers],
                "erased": erased,
            }
        )
    return found


def _timeline(report: Mapping[str, Any], reference: ReferenceData) -> list[dict]:
    steps = []
    for item in report["timeline"]:
        label = item["label"]
        details = list(item["details"])
        steps.append(
            {
                "when": paris_time(item["occurred_at"]),
                "label": label,
                "who": _who(item["actor"], reference),
                "details": details,
                "bonus_after": item["bonus_after"]["total_bonus_points"],
            }
        )
    return steps


def _accesses(accesses: Iterable[Mapping[str, str]], reference: ReferenceData) -> list[dict]:
    return [
        {
            "when": paris_time(a["at"]),
            "who": a["user_id"],
            "role": ROLE_LABELS.get(a["role"], a["role"]),
            "establishment": _name(reference, a["uai"]) if a["uai"] else "Rectorat de Paris",
            "what": a["what"],
            "channel": CHANNEL_LABELS.get(a["channel"], a["channel"]),
        }
        for a in accesses
    ]


def build(
    report: Mapping[str, Any],
    accesses: Iterable[Mapping[str, str]],
    reference: ReferenceData,
    *,
    generated_at: datetime,
    generated_by: str,
) -> dict[str, Any]:
    """The document's content: identity, référent, avis, interviews and reports, bonus, timeline, access log.
    `report` is `student_audit`'s answer (its details written with `paris_time`); `accesses` the access
    log's entries as dicts (`Access.as_dict()`), oldest first."""
    file = fold(report["campaign"], report["ine"], _events(report))
    erased = file.erased or file.last_name == ERASED
    voeux = [
        {
            "lycee": f"{_name(reference, v['lycee_uai'])} ({v['lycee_uai']})",
            "formation": _formation(reference, v["lycee_uai"], v["formation_code"]),
            "lycee_avis": LYCEE_AVIS_LABELS.get(v["lycee_avis"], v["lycee_avis"]) if v["lycee_avis"] else "pas encore donné",
            "bonus_points": v["bonus_points"],
        }
        for v in report["voeux"]
    ]
    return {
        "ine": report["ine"],
        "campaign": report["campaign"],
        "generated_at": paris_time(generated_at),
        "generated_by": generated_by,
        "erased": erased,
        "identity": _identity(file, reference),
        "college_avis": _college_avis(file, report["timeline"], reference),
        "interviews": _interviews(file, report, reference),
        "letters": _letters(file, reference, erased),
        "voeux": voeux,
        "withdrawn": report["withdrawn"],
        "total_bonus_points": report["total_bonus_points"],
        "campaign_bonus_points": report["campaign_bonus_points"],
        "timeline": _timeline(report, reference),
        "unreadable": len(report.get("unreadable", [])),
        "accesses": _accesses(accesses, reference),
    }


# --- the document ---------------------------------------------------------------------------------


def render(content: Mapping[str, Any], *, back_link: str | None = None) -> str:
    """The document as one HTML page; `back_link` adds a link back (on screen only) for the rectorat's page."""
    from shared.web.templating import environment

    return environment(TEMPLATES).get_template("dossier.html").render(doc=content, back_link=back_link)


_STYLE = re.compile(r"<style>(.*?)</style>", re.S)


def style_sources(html: str) -> str:
    """The CSP sources that allow exactly the document's inline styles (`'sha256-…'`), and nothing else."""
    digests = [hashlib.sha256(found.encode()).digest() for found in _STYLE.findall(html)]
    return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)
