"""Reads of evaluation's view: a page of a lycée's interviews with the students' files, paged in SQL."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from services.evaluation.views import interviews, student_files
from shared.contracts.student_file import StudentFile

_WITH_FILES = interviews.join(
    student_files, (student_files.c.campaign == interviews.c.campaign) & (student_files.c.ine == interviews.c.ine)
)


def lycee_interviews(
    conn: Connection, campaign: str, lycee_uai: str | None, limit: int | None = None, offset: int = 0
) -> list[tuple[dict, StudentFile]]:
    """The interviews at one lycée, or at every lycée when `lycee_uai` is None (rectorat), by date then
    formation (the interview id makes the order total); `limit` from `offset` (all when None): only the
    page's files are read and parsed."""
    query = (
        select(interviews, student_files.c.file)
        .select_from(_WITH_FILES)
        .where(*_at_lycee(campaign, lycee_uai))
        .order_by(interviews.c.scheduled_at, interviews.c.formation_code, interviews.c.ine, interviews.c.interview_id)
        .limit(limit)
        .offset(offset or None)
    )
    return [(dict(row._mapping), StudentFile.model_validate_json(row.file)) for row in conn.execute(query)]


def count_lycee_interviews(conn: Connection, campaign: str, lycee_uai: str | None) -> int:
    return conn.execute(select(func.count()).select_from(_WITH_FILES).where(*_at_lycee(campaign, lycee_uai))).scalar_one()


def _at_lycee(campaign: str, lycee_uai: str | None) -> list:
    where = [interviews.c.campaign == campaign]
    if lycee_uai is not None:
        where.append(interviews.c.lycee_uai == lycee_uai)
    return where
