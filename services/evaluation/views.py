"""Evaluation's local view: the interviews at each lycée, with the student's file for the collège avis."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Index, String, Table

from shared.contracts.streams import LoggedEvent
from shared.domain.student_file import StudentFile, without_draft_letters
from services.evaluation.slots import apply_slots, slot_tables
from shared.runtime.db import new_metadata
from shared.runtime.projection.views import (
    apply_campaigns,
    campaigns_table,
    fold_batch,
    positions_table,
    student_files_table,
    write_student_rows,
)

metadata = new_metadata()
positions = positions_table(metadata)
student_files = student_files_table(metadata)
campaigns = campaigns_table(metadata)
interviews = Table(
    "interviews",
    metadata,
    Column("campaign", String(4), primary_key=True),
    Column("ine", String(11), primary_key=True),
    Column("interview_id", String(64), primary_key=True),
    Column("lycee_uai", String(8), nullable=False, index=True),
    Column("formation_code", String(11), nullable=False),
    Column("scheduled_at", String(40)),
    Column("status", String(12), nullable=False),
    Column("lycee_avis", String(12)),  # the latest lycée avis given on this interview (the day's work, migration 0004)
    # A lycée's list: filtered by campaign and lycée, in its order (migration 0002).
    Index("ix_interviews_lycee_order", "campaign", "lycee_uai", "scheduled_at", "formation_code", "ine", "interview_id"),
)

slots, slot_bookings = slot_tables(metadata)  # SPEC §7: the slots and the places their bookings take


class InterviewsView:
    name = "evaluation-interviews"
    positions = positions
    personal_tables = (student_files,)
    slot_tables = (slots, slot_bookings)
    interviews_table = interviews  # the day's work reads it (services/evaluation/todo.py)

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        apply_campaigns(conn, campaigns, events)
        files = fold_batch(conn, student_files, events, keep=without_draft_letters)  # a draft letter stays the student's
        apply_slots(conn, slots, slot_bookings, events, files)
        # only the rows that changed since the student's kept file are written (views.write_student_rows)
        write_student_rows(conn, interviews, [(f, interview_rows(f)) for f in files])


def interview_rows(f: StudentFile) -> list[dict]:
    return [
        {
            "campaign": f.campaign,
            "ine": f.ine,
            "interview_id": i.interview_id,
            "lycee_uai": i.lycee_uai,
            "formation_code": i.formation_code,
            "scheduled_at": i.scheduled_at.isoformat() if i.scheduled_at else None,
            "status": i.status,
            "lycee_avis": _avis_on(f, i),
        }
        for i in f.interviews.values()
    ]


def _avis_on(file, interview) -> str | None:
    """The vœu's latest lycée avis when it was given on this interview (SPEC §7: « avis à donner » are the held
    interviews without one)."""
    avis = file.latest_lycee_avis(interview.lycee_uai, interview.formation_code)
    return avis.avis if avis is not None and avis.interview_id == interview.interview_id else None
