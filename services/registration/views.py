"""Registration's local view: every student's file with their progress, and the campaigns' bonus."""

from __future__ import annotations

from sqlalchemy import Connection, select

from shared.contracts.student_file import StudentFile
from shared.contracts.streams import LoggedEvent
from shared.runtime.db import new_metadata
from shared.runtime.views import (
    apply_campaigns,
    campaign_bonus_points,
    campaigns_table,
    fold_batch,
    positions_table,
    student_files_table,
)

metadata = new_metadata()
positions = positions_table(metadata)
student_files = student_files_table(metadata)
campaigns = campaigns_table(metadata)


class StudentsView:
    name = "registration-students"
    positions = positions
    personal_tables = (student_files,)

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        apply_campaigns(conn, campaigns, events)
        fold_batch(conn, student_files, events)


def college_students(conn: Connection, campaign: str, college_uai: str | None) -> list[StudentFile]:
    """The students of one collège, or of every collège when `college_uai` is None (rectorat)."""
    query = select(student_files.c.file).where(student_files.c.campaign == campaign, student_files.c.college_uai.is_not(None))
    if college_uai is not None:
        query = query.where(student_files.c.college_uai == college_uai)
    rows = conn.execute(query.order_by(student_files.c.ine))
    return [StudentFile.model_validate_json(r.file) for r in rows]


def bonus_points(conn: Connection, campaign: str) -> int:
    return campaign_bonus_points(conn, campaigns).get(campaign, 0)
