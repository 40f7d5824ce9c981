"""Reads of evaluation's view: a page of a lycée's interviews with the students' files, paged in SQL."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from services.evaluation.views import interviews, student_files
from shared.domain.student_file import StudentFile


def _order(c) -> tuple:  # by date then formation; the interview id makes the order total
    return (c.scheduled_at, c.formation_code, c.ine, c.interview_id)


def lycee_interviews(
    conn: Connection, campaign: str, lycee_uai: str | None, limit: int | None = None, offset: int = 0,
    formation_code: str | None = None, status: str | None = None,
) -> list[tuple[dict, StudentFile]]:
    """The interviews at one lycée, or at every lycée when `lycee_uai` is None (rectorat), by date then
    formation (the interview id makes the order total), of one formation and status if given; `limit`
    from `offset` (all when None): only the page's files are read and parsed."""
    # The page is chosen among the narrow interview rows, then joined to its files: sorting the joined rows
    # would carry every file through the sort (157 -> 20 ms for a page of 100 among 12,000 on SQLite).
    page = (
        select(interviews)
        .where(*_at_lycee(campaign, lycee_uai, formation_code, status))
        .order_by(*_order(interviews.c))
        .limit(limit)
        .offset(offset or None)
        .subquery()
    )
    query = (
        select(page, student_files.c.file)
        .join(student_files, (student_files.c.campaign == page.c.campaign) & (student_files.c.ine == page.c.ine))
        .order_by(*_order(page.c))
    )
    return [(dict(row._mapping), StudentFile.model_validate_json(row.file)) for row in conn.execute(query)]


def count_lycee_interviews(
    conn: Connection, campaign: str, lycee_uai: str | None,
    formation_code: str | None = None, status: str | None = None,
) -> int:
    """Every interview row has its student's file: the view writes both in one transaction."""
    where = _at_lycee(campaign, lycee_uai, formation_code, status)
    return conn.execute(select(func.count()).select_from(interviews).where(*where)).scalar_one()


def lycee_interview_counts(conn: Connection, campaign: str, lycee_uai: str) -> dict[str, int]:
    """The lycée's interviews by status (the « Entretiens » counters), counted on the index's campaign
    and lycée prefix: no file is read."""
    query = (
        select(interviews.c.status, func.count())
        .where(*_at_lycee(campaign, lycee_uai))
        .group_by(interviews.c.status)
    )
    return {status: count for status, count in conn.execute(query)}


def _at_lycee(
    campaign: str, lycee_uai: str | None, formation_code: str | None = None, status: str | None = None
) -> list:
    where = [interviews.c.campaign == campaign]
    if lycee_uai is not None:
        where.append(interviews.c.lycee_uai == lycee_uai)
    if formation_code:
        where.append(interviews.c.formation_code == formation_code)
    if status:
        where.append(interviews.c.status == status)
    return where
