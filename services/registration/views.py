"""Registration's local view: every student's file with their progress, and the campaigns' bonus."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Connection, DateTime, Index, Integer, String, Table, delete, false

from shared.contracts.events import StudentForgotten
from shared.contracts.streams import LoggedEvent
from shared.domain.student_file import StudentFile
from shared.runtime.db import new_metadata
from shared.runtime.projection.slots import apply_slots, slot_tables
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
# The students' list: filtered by campaign and collège, ordered by INE (migration 0002).
Index("ix_student_files_campaign_college_ine", student_files.c.campaign, student_files.c.college_uai, student_files.c.ine)
campaigns = campaigns_table(metadata)
# What « Mes élèves » counts, one narrow row per student, so its counters are SQL counts (migration 0003).
student_progress = Table(
    "student_progress",
    metadata,
    Column("campaign", String(4), primary_key=True),
    Column("ine", String(11), primary_key=True),
    Column("college_uai", String(8)),
    Column("withdrawn", Boolean, nullable=False),
    Column("college_avis_given", Boolean, nullable=False),
    # an interview held: the collège avis can no longer be given, so it is no longer to do (migration 0006)
    Column("interview_held", Boolean, nullable=False, server_default=false()),
    Column("scheduled_interviews", Integer, nullable=False),
    Column("favorable_voeux", Integer, nullable=False),  # vœux whose latest lycée avis is favorable
    Index("ix_student_progress_campaign_college", "campaign", "college_uai"),
)

# The students' access codes (SPEC §6), outside the log: a salted hash per student and campaign, never the code
# (services/registration/access_codes.py keeps them). Not rebuilt from the log, purged with the campaign,
# erased with the student (StudentForgotten, below). Migration 0004.
access_codes = Table(
    "student_access_codes",
    metadata,
    Column("campaign", String(4), primary_key=True),
    Column("ine", String(11), primary_key=True),
    Column("college_uai", String(8), nullable=False),
    Column("code_hash", String(200), nullable=False),
    Column("issued_by", String(128), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_student_access_codes_ine", "ine"),
)
# Wrong codes per INE, counted in the database so the limit holds across processes; a row lives only while it
# matters (shared/runtime/tries.py: an hour after its last failure, or its lock). Migration 0004.
sign_in_failures = Table(
    "student_sign_in_failures",
    metadata,
    Column("ine", String(11), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    Index("ix_student_sign_in_failures_last_failure_at", "last_failure_at"),
)
# EduConnect identities linked to a student's INE (SPEC §8, services/registration/educonnect.py), outside the log:
# `subject` is an HMAC of the IdP and its identifier, never the identifier. Purged with the campaign; a student's
# rows deleted when the view applies their erasure (StudentForgotten), so `passpro forget` erases the link.
educonnect_links = Table(
    "educonnect_links",
    metadata,
    Column("campaign", String(4), primary_key=True),
    Column("subject", String(64), primary_key=True),
    Column("ine", String(11), nullable=False),
    Column("linked_at", String(32), nullable=False),
    Index("ix_educonnect_links_campaign_ine", "campaign", "ine"),
)


# The day's work (SPEC §7): each scheduled interview of a student followed, its time, the student's référent and
# whether its preparation checklist is complete, so « À faire » is a SQL filter (migration 0008).
upcoming_interviews = Table(
    "upcoming_interviews",
    metadata,
    Column("campaign", String(4), primary_key=True),
    Column("ine", String(11), primary_key=True),
    Column("interview_id", String(64), primary_key=True),
    Column("college_uai", String(8)),
    Column("referent_user_id", String(128)),
    Column("lycee_uai", String(8), nullable=False),
    Column("formation_code", String(11), nullable=False),
    Column("scheduled_at", String(40), nullable=False),
    Column("ready", Boolean, nullable=False),
    Index("ix_upcoming_interviews_college_time", "campaign", "college_uai", "scheduled_at"),
)

# The lycées' slots and the places taken (SPEC §7): what the référent books from (migration 0007).
slots, slot_bookings = slot_tables(metadata)


class StudentsView:
    name = "registration-students"
    positions = positions
    slot_tables = (slots, slot_bookings)
    personal_tables = (student_files, educonnect_links)

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        apply_campaigns(conn, campaigns, events)
        files = fold_batch(conn, student_files, events)
        # only the rows that changed since the student's kept file are written (views.write_student_rows)
        write_student_rows(conn, student_progress, [(f, [progress_row(f)]) for f in files])
        apply_upcoming(conn, files)
        apply_slots(conn, slots, slot_bookings, events, files)
        forget_links(conn, events)
        forgotten = sorted({e.event.student_ine for e in events if isinstance(e.event.payload, StudentForgotten)})
        if forgotten:  # the student's way in goes with their data (passpro forget)
            conn.execute(delete(access_codes).where(access_codes.c.ine.in_(forgotten)))
            conn.execute(delete(sign_in_failures).where(sign_in_failures.c.ine.in_(forgotten)))


def progress_row(file: StudentFile) -> dict:
    return {
        "campaign": file.campaign,
        "ine": file.ine,
        "college_uai": file.college_uai,
        "withdrawn": file.withdrawn,
        "college_avis_given": file.college_avis is not None,
        "interview_held": file.any_interview_held,
        "scheduled_interviews": sum(1 for i in file.interviews.values() if i.status == "scheduled"),
        # the bonus rule's condition (shared/domain/bonus.py), without the withdrawal and the points that the
        # count adds: a student has a bonus when not withdrawn, with a favorable vœu, in a campaign with points
        "favorable_voeux": sum(1 for voeu in file.voeux() if _favorable(file.latest_lycee_avis(*voeu))),
    }


def forget_links(conn: Connection, events: list[LoggedEvent]) -> None:
    for logged in events:
        if isinstance(logged.event.payload, StudentForgotten):
            event = logged.event
            conn.execute(delete(educonnect_links).where(
                educonnect_links.c.campaign == event.campaign, educonnect_links.c.ine == event.student_ine
            ))


def _favorable(avis) -> bool:
    return avis is not None and avis.avis == "favorable"


def apply_upcoming(conn: Connection, files: list[StudentFile]) -> None:
    """The changed students' scheduled interviews, as rows of `upcoming_interviews` (none for a withdrawn one)."""
    write_student_rows(conn, upcoming_interviews, [(f, upcoming_rows(f)) for f in files])


def upcoming_rows(f: StudentFile) -> list[dict]:
    if f.withdrawn:
        return []
    return [
        {
            "campaign": f.campaign, "ine": f.ine, "interview_id": i.interview_id, "college_uai": f.college_uai,
            "referent_user_id": f.referent.user_id if f.referent else None, "lycee_uai": i.lycee_uai,
            "formation_code": i.formation_code, "scheduled_at": i.scheduled_at.isoformat(),
            "ready": bool(f.preparations.get(i.interview_id) and f.preparations[i.interview_id].ready(i.mode)),
        }
        for i in f.interviews.values()
        if i.status == "scheduled" and i.scheduled_at is not None
    ]
