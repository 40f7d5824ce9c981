"""Reads of registration's view: a page of the collège's students, paged in SQL."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from services.registration.views import campaigns, student_files
from shared.domain.student_file import StudentFile
from shared.runtime.projection.views import campaign_bonus_points


def college_students(
    conn: Connection, campaign: str, college_uai: str | None, limit: int | None = None, offset: int = 0
) -> list[StudentFile]:
    """The students of one collège, or of every collège when `college_uai` is None (rectorat), by INE;
    `limit` students from `offset` (all when None): only those rows are read and parsed."""
    query = (
        select(student_files.c.file)
        .where(*_of_college(campaign, college_uai))
        .order_by(student_files.c.ine)
        .limit(limit)
        .offset(offset or None)
    )
    return [StudentFile.model_validate_json(row.file) for row in conn.execute(query)]


def count_college_students(conn: Connection, campaign: str, college_uai: str | None) -> int:
    return conn.execute(select(func.count()).select_from(student_files).where(*_of_college(campaign, college_uai))).scalar_one()


def _of_college(campaign: str, college_uai: str | None) -> list:
    where = [student_files.c.campaign == campaign, student_files.c.college_uai.is_not(None)]
    if college_uai is not None:
        where.append(student_files.c.college_uai == college_uai)
    return where


def bonus_points(conn: Connection, campaign: str) -> int:
    return campaign_bonus_points(conn, campaigns).get(campaign, 0)
