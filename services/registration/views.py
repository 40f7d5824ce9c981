"""Registration's local view: every student's file with their progress, and the campaigns' bonus."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Connection, Index, Integer, String, Table

from shared.contracts.streams import LoggedEvent
from shared.domain.student_file import StudentFile
from shared.runtime.db import new_metadata
from shared.runtime.projection.views import (
    apply_campaigns,
    campaigns_table,
    fold_batch,
    positions_table,
    student_files_table,
    upsert,
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
    Column("scheduled_interviews", Integer, nullable=False),
    Column("favorable_voeux", Integer, nullable=False),  # vœux whose latest lycée avis is favorable
    Index("ix_student_progress_campaign_college", "campaign", "college_uai"),
)


class StudentsView:
    name = "registration-students"
    positions = positions
    personal_tables = (student_files,)

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        apply_campaigns(conn, campaigns, events)
        files = fold_batch(conn, student_files, events)
        upsert(conn, student_progress, [progress_row(f) for f in files], ["campaign", "ine"])


def progress_row(file: StudentFile) -> dict:
    return {
        "campaign": file.campaign,
        "ine": file.ine,
        "college_uai": file.college_uai,
        "withdrawn": file.withdrawn,
        "college_avis_given": file.college_avis is not None,
        "scheduled_interviews": sum(1 for i in file.interviews.values() if i.status == "scheduled"),
        # the bonus rule's condition (shared/domain/bonus.py), without the withdrawal and the points that the
        # count adds: a student has a bonus when not withdrawn, with a favorable vœu, in a campaign with points
        "favorable_voeux": sum(1 for voeu in file.voeux() if _favorable(file.latest_lycee_avis(*voeu))),
    }


def _favorable(avis) -> bool:
    return avis is not None and avis.avis == "favorable"
