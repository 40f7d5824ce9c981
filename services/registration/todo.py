"""The collège's day's work (SPEC §7) at the top of « Mes élèves », from the view's narrow rows, paged in SQL:
the principal's collège avis still to give (only those that can still be given: no interview held, not withdrawn;
the soonest first interview first) and the référent's students with an interview in the next 7 days whose
preparation is not complete (filter: the whole collège, or « mes élèves », those the référent follows)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy import Connection, func, select

from services.registration.views import student_progress, upcoming_interviews
from shared.runtime.http.app import runtime
from shared.web.pages import formation_label
from shared.web.todo import TODO_SIZE, Filter, Todo, TodoItem, todo_page

SOON = timedelta(days=7)


def avis_to_give(conn: Connection, campaign: str, college_uai: str, limit: int = TODO_SIZE, offset: int = 0):
    p, u = student_progress.c, upcoming_interviews.c
    where = [p.campaign == campaign, p.college_uai == college_uai, p.withdrawn.is_(False),
             p.college_avis_given.is_(False), p.interview_held.is_(False)]
    first = (select(func.min(u.scheduled_at)).where(u.campaign == p.campaign, u.ine == p.ine)
             .correlate(student_progress).scalar_subquery().label("first_interview"))
    total = conn.execute(select(func.count()).select_from(student_progress).where(*where)).scalar_one()
    rows = conn.execute(
        select(p.ine, first).where(*where).order_by(first.is_(None), first, p.ine).limit(limit).offset(offset)
    ).mappings().all()
    return [dict(r) for r in rows], total


def not_ready(conn: Connection, campaign: str, college_uai: str, now: datetime, referent_user_id: str | None = None,
              limit: int = TODO_SIZE, offset: int = 0):
    u = upcoming_interviews.c
    where = [u.campaign == campaign, u.college_uai == college_uai, u.ready.is_(False),
             u.scheduled_at >= now.astimezone(UTC).isoformat(), u.scheduled_at <= (now + SOON).astimezone(UTC).isoformat()]
    if referent_user_id:
        where.append(u.referent_user_id == referent_user_id)
    total = conn.execute(select(func.count()).select_from(upcoming_interviews).where(*where)).scalar_one()
    rows = conn.execute(
        select(u.ine, u.interview_id, u.lycee_uai, u.formation_code, u.scheduled_at)
        .where(*where).order_by(u.scheduled_at, u.ine).limit(limit).offset(offset)
    ).mappings().all()
    return [dict(r) for r in rows], total


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


async def todo_of(request: Request, who, eleves: str = "", afaire: str | None = None) -> Todo | None:
    rt = runtime(request)
    number, year = todo_page(afaire), rt.settings.campaign
    offset = (number - 1) * TODO_SIZE
    if who.role == "principal":
        def read():
            with rt.engine.connect() as conn:
                return avis_to_give(conn, year, who.uai, TODO_SIZE, offset)

        rows, total = await asyncio.to_thread(read)
        items = [TodoItem(f"Élève {r['ine']}", f"/eleves/{r['ine']}", _when(r["first_interview"]),
                          "premier entretien" if r["first_interview"] else "aucun entretien prévu") for r in rows]
        return Todo("avis du collège à donner", "Aucun avis du collège à donner.", items, total, number, TODO_SIZE)
    if who.role == "referent":
        mine = eleves == "miens"

        def read():
            with rt.engine.connect() as conn:
                return not_ready(conn, year, who.uai, rt.clock(), who.user_id if mine else None, TODO_SIZE, offset)

        rows, total = await asyncio.to_thread(read)
        items = [TodoItem(f"Élève {r['ine']} — {formation_label(rt.reference, r['lycee_uai'], r['formation_code'])}",
                          f"/eleves/{r['ine']}", _when(r["scheduled_at"]), "préparation incomplète") for r in rows]
        filters = [Filter("eleves", "Élèves", [("", "Tout le collège"), ("miens", "Mes élèves")], "miens" if mine else "")]
        return Todo("entretiens des 7 prochains jours à préparer",
                    "Aucun entretien des 7 prochains jours à préparer.", items, total, number, TODO_SIZE, filters)
    return None
