"""The lycée's day's work (SPEC §7) at the top of its home page, from the interviews' view rows, paged in SQL:
the staff's « comptes rendus à saisir » (interviews past their time, still scheduled: no report yet) and the
proviseur's « avis à donner » (held interviews with no lycée avis), each filtered by formation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import Connection, Table, func, select

from shared.runtime.http.app import runtime
from shared.web.pages import formation_label
from shared.web.todo import TODO_SIZE, Filter, Todo, TodoItem, todo_page


def due(
    conn: Connection, interviews: Table, campaign: str, lycee_uai: str, kind: str, now: datetime,
    formation_code: str | None = None, limit: int = TODO_SIZE, offset: int = 0,
) -> tuple[list[dict], int]:
    """`kind` "reports": scheduled interviews whose time has passed; "avis": held ones with no lycée avis.
    The oldest first; (the page's rows, their total)."""
    t = interviews.c
    where = [t.campaign == campaign, t.lycee_uai == lycee_uai]
    if kind == "reports":
        # scheduled_at is stored as RFC 3339 in UTC, so its text orders as its time does
        where += [t.status == "scheduled", t.scheduled_at < now.astimezone(UTC).isoformat()]
    else:
        where += [t.status == "held", t.lycee_avis.is_(None)]
    if formation_code:
        where.append(t.formation_code == formation_code)
    total = conn.execute(select(func.count()).select_from(interviews).where(*where)).scalar_one()
    rows = conn.execute(
        select(t.ine, t.interview_id, t.formation_code, t.scheduled_at)
        .where(*where).order_by(t.scheduled_at, t.ine, t.interview_id).limit(limit).offset(offset)
    ).mappings().all()
    return [dict(r) for r in rows], total


async def todo_of(request: Request, who, formation: str = "", afaire: str | None = None) -> Todo | None:
    """The signed-in lycée user's list: the proviseur's avis to give, the staff's reports to write."""
    rt = runtime(request)
    lycee = rt.reference.lycee(who.uai)
    if lycee is None:
        return None
    kind = "avis" if who.role == "proviseur" else "reports"
    formations = [(f.code, f.label) for f in lycee.formations]
    chosen = formation if formation in dict(formations) else ""
    number = todo_page(afaire)
    interviews = rt.view.interviews_table

    def read():
        with rt.engine.connect() as conn:
            return due(conn, interviews, rt.settings.campaign, who.uai, kind, rt.clock(), chosen or None,
                       TODO_SIZE, (number - 1) * TODO_SIZE)

    rows, total = await asyncio.to_thread(read)
    items = [
        TodoItem(f"Élève {r['ine']} — {formation_label(rt.reference, who.uai, r['formation_code'])}",
                 f"/eleves/{r['ine']}/{r['formation_code']}", datetime.fromisoformat(r["scheduled_at"]) if r["scheduled_at"] else None)
        for r in rows
    ]
    title, empty = (
        ("avis à donner", "Aucun avis à donner : chaque entretien tenu a son avis.") if kind == "avis"
        else ("comptes rendus à saisir", "Aucun compte rendu à saisir : chaque entretien passé est enregistré.")
    )
    filters = [Filter("afaire_formation", "Formation", [("", "Toutes")] + formations, chosen)]
    return Todo(title, empty, items, total, number, TODO_SIZE, filters)
