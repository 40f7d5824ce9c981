"""Registration's local view: every student's file with their progress, and the campaigns' bonus."""

from __future__ import annotations

from sqlalchemy import Connection

from shared.contracts.streams import LoggedEvent
from shared.runtime.db import new_metadata
from shared.runtime.views import (
    apply_campaigns,
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
