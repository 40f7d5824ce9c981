"""Registration's local view: every student's file with their progress, and the campaigns' bonus."""

from __future__ import annotations

from sqlalchemy import Connection, Index

from shared.contracts.streams import LoggedEvent
from shared.runtime.db import new_metadata
from shared.runtime.projection.views import (
    apply_campaigns,
    campaigns_table,
    fold_batch,
    positions_table,
    student_files_table,
)

metadata = new_metadata()
positions = positions_table(metadata)
student_files = student_files_table(metadata)
# The students' list: filtered by campaign and collège, ordered by INE (migration 0002).
Index("ix_student_files_campaign_college_ine", student_files.c.campaign, student_files.c.college_uai, student_files.c.ine)
campaigns = campaigns_table(metadata)


class StudentsView:
    name = "registration-students"
    positions = positions
    personal_tables = (student_files,)

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        apply_campaigns(conn, campaigns, events)
        fold_batch(conn, student_files, events)
