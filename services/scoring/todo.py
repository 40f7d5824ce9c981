"""The rectorat's day's work (SPEC §7) at the top of its dashboard: what is late, by establishment, from the
projection's tables, grouped, ordered and paged in SQL — for each collège the collège avis still missing (of
students followed with no interview held: those can still be given), for each lycée the held interviews with no
lycée avis. Filtered by kind (collèges, lycées). The calendar itself is the band every page shows."""

from __future__ import annotations

import asyncio

from fastapi import Request
from sqlalchemy import Connection, String, and_, cast, exists, func, literal, select, union_all

from services.scoring.views import student_totals, voeux
from shared.runtime.http.app import runtime
from shared.web.todo import TODO_SIZE, Filter, Todo, TodoItem, todo_page

KINDS = [("", "Tous les établissements"), ("college", "Collèges"), ("lycee", "Lycées")]


def late_by_establishment(conn: Connection, campaign: str, kind: str = "", limit: int = TODO_SIZE, offset: int = 0):
    """(rows of uai, kind, late; their total): the establishments with work late, the most late first."""
    s, v = student_totals.c, voeux.c
    held = exists().where(and_(v.campaign == s.campaign, v.ine == s.ine, v.interview_held.is_(True)))
    colleges = (
        select(s.college_uai.label("uai"), cast(literal("college"), String(8)).label("kind"), func.count().label("late"))
        .where(s.campaign == campaign, s.withdrawn.is_(False), s.college_avis.is_(None), s.college_uai.is_not(None), ~held)
        .group_by(s.college_uai)
    )
    lycees = (
        select(v.lycee_uai.label("uai"), cast(literal("lycee"), String(8)).label("kind"), func.count().label("late"))
        .where(v.campaign == campaign, v.interview_held.is_(True), v.lycee_avis.is_(None))
        .group_by(v.lycee_uai)
    )
    parts = {"college": [colleges], "lycee": [lycees]}.get(kind, [colleges, lycees])
    late = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    total = conn.execute(select(func.count()).select_from(late)).scalar_one()
    rows = conn.execute(
        select(late.c.uai, late.c.kind, late.c.late).order_by(late.c.late.desc(), late.c.uai).limit(limit).offset(offset)
    ).mappings().all()
    return [dict(r) for r in rows], total


async def todo_of(request: Request, kind: str = "", afaire: str | None = None) -> Todo:
    rt = runtime(request)
    kind = kind if kind in dict(KINDS) else ""
    number = todo_page(afaire)

    def read():
        with rt.engine.connect() as conn:
            return late_by_establishment(conn, rt.settings.campaign, kind, TODO_SIZE, (number - 1) * TODO_SIZE)

    rows, total = await asyncio.to_thread(read)
    items = []
    for r in rows:
        found = rt.reference.get(r["uai"])
        name = found.name if found else r["uai"]
        if r["kind"] == "college":
            text, href = f"{name} : {r['late']} avis du collège à donner", f"/?college_uai={r['uai']}"
        else:
            text, href = f"{name} : {r['late']} avis du lycée à donner après entretien", f"/?lycee_uai={r['uai']}"
        items.append(TodoItem(text, href))
    return Todo("établissements en retard", "Aucun établissement en retard.", items, total, number, TODO_SIZE,
                [Filter("etablissements", "Établissements", KINDS, kind)])
