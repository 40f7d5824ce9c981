"""Reads of registration's view: a page of the collège's students, paged in SQL."""

from __future__ import annotations

from sqlalchemy import Connection, case, func, select

from services.registration.views import campaigns, slots, student_files, student_progress
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


def college_student(conn: Connection, campaign: str, college_uai: str, ine: str) -> StudentFile | None:
    """One of the collège's students; another collège's reads as unknown."""
    found = conn.execute(
        select(student_files.c.file).where(*_of_college(campaign, college_uai), student_files.c.ine == ine)
    ).scalar()
    return StudentFile.model_validate_json(found) if found else None


def slot_places(conn: Connection, campaign: str, file: StudentFile | None) -> dict[str, str]:
    """The place (the lycée's room, or how the video link is given: SPEC §7) of each slot the file's interviews
    are booked on, from the view table `slots`."""
    ids = {i.slot_id for i in file.interviews.values() if i.slot_id} if file else set()
    if not ids:
        return {}
    query = select(slots.c.slot_id, slots.c.place).where(slots.c.campaign == campaign, slots.c.slot_id.in_(ids))
    return {row.slot_id: row.place for row in conn.execute(query)}


def count_college_students(conn: Connection, campaign: str, college_uai: str | None) -> int:
    return conn.execute(select(func.count()).select_from(student_files).where(*_of_college(campaign, college_uai))).scalar_one()


def college_counts(conn: Connection, campaign: str, college_uai: str) -> dict[str, int]:
    """« Mes élèves » counters, counted on the narrow progress rows (no file is read): the students followed,
    the collège avis still to give, the interviews to come (of students followed), the students with a bonus."""
    p = student_progress.c
    active = p.withdrawn.is_(False)

    def total(when, then=1) -> object:
        return func.coalesce(func.sum(case((when, then), else_=0)), 0)

    row = conn.execute(
        select(
            total(active).label("active"),
            # an avis that can no longer be given (an interview was held without it) is not to do any more
            total(active & p.college_avis_given.is_(False) & p.interview_held.is_(False)).label("avis_to_give"),
            total(active, p.scheduled_interviews).label("upcoming"),
            total(active & (p.favorable_voeux > 0)).label("with_bonus"),
        ).where(p.campaign == campaign, p.college_uai == college_uai)
    ).one()
    counts = dict(row._mapping)
    if not bonus_points(conn, campaign):  # a campaign without points gives no student a bonus
        counts["with_bonus"] = 0
    return counts


def _of_college(campaign: str, college_uai: str | None) -> list:
    where = [student_files.c.campaign == campaign, student_files.c.college_uai.is_not(None)]
    if college_uai is not None:
        where.append(student_files.c.college_uai == college_uai)
    return where


def bonus_points(conn: Connection, campaign: str) -> int:
    return campaign_bonus_points(conn, campaigns).get(campaign, 0)
