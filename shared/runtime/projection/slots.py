"""The slots' view tables (SPEC §7), for every service whose pages show slots: `slots` (each slot opened, closed
or not) and `slot_bookings` (the places the students' interviews take), kept from the service streams by the
view's `apply`, and a page of slots with their free places, filtered and paged in SQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    func,
    select,
    update,
)

from shared.contracts.events import InterviewSlotClosed, InterviewSlotOpened
from shared.contracts.streams import LoggedEvent
from shared.domain.student_file import StudentFile
from shared.runtime.projection.views import delete_students, upsert


def slot_tables(metadata: MetaData) -> tuple[Table, Table]:
    slots = Table(
        "slots",
        metadata,
        Column("campaign", String(4), primary_key=True),
        Column("slot_id", String(64), primary_key=True),
        Column("lycee_uai", String(8), nullable=False),
        Column("formation_code", String(11), nullable=False),
        Column("starts_at", String(40), nullable=False),
        Column("duration_minutes", Integer, nullable=False),
        Column("capacity", Integer, nullable=False),
        Column("mode", String(12), nullable=False),
        Column("place", String(200), nullable=False),
        Column("closed", Boolean, nullable=False),
        Index("ix_slots_lycee_order", "campaign", "lycee_uai", "formation_code", "starts_at", "slot_id"),
        Index("ix_slots_order", "campaign", "starts_at", "slot_id"),
    )
    bookings = Table(
        "slot_bookings",
        metadata,
        Column("campaign", String(4), primary_key=True),
        Column("ine", String(11), primary_key=True),
        Column("interview_id", String(64), primary_key=True),
        Column("slot_id", String(64), nullable=False),
        Index("ix_slot_bookings_slot", "campaign", "slot_id"),
    )
    return slots, bookings


def _utc(moment: datetime) -> str:
    """Stored in UTC with one format, so the text sorts as the time does."""
    return moment.astimezone(UTC).isoformat()


def apply_slots(conn: Connection, slots: Table, bookings: Table, events: list[LoggedEvent], files: list[StudentFile]) -> None:
    """The slots opened and closed in the batch, and the places taken by the changed students' interviews
    (scheduled or held in a slot; a cancelled or moved one frees its place): order-free, idempotent."""
    opened = [
        {
            "campaign": e.event.campaign, "slot_id": p.slot_id, "lycee_uai": p.lycee_uai,
            "formation_code": p.formation_code, "starts_at": _utc(p.starts_at), "duration_minutes": p.duration_minutes,
            "capacity": p.capacity, "mode": p.mode, "place": p.place, "closed": False,
        }
        for e in events
        if isinstance(p := e.event.payload, InterviewSlotOpened)
    ]
    upsert(conn, slots, opened, ["campaign", "slot_id"])
    for e in events:
        if isinstance(p := e.event.payload, InterviewSlotClosed):
            conn.execute(
                update(slots).where(slots.c.campaign == e.event.campaign, slots.c.slot_id == p.slot_id).values(closed=True)
            )
    if not files:
        return
    delete_students(conn, bookings, files)
    rows = [
        {"campaign": f.campaign, "ine": f.ine, "interview_id": i.interview_id, "slot_id": i.slot_id}
        for f in files
        for i in f.interviews.values()
        if i.slot_id and i.status != "cancelled"
    ]
    if rows:
        conn.execute(bookings.insert(), rows)


def slot_page(
    conn: Connection, slots: Table, bookings: Table, campaign: str, lycee_uai: str | None = None,
    formation_code: str | None = None, start: datetime | None = None, end: datetime | None = None,
    open_only: bool = False, limit: int | None = 100, offset: int = 0,
) -> tuple[list[dict], int]:
    """A page of slots by time, with the places taken, and their total; filtered and paged in SQL."""
    taken = (
        select(bookings.c.slot_id, func.count().label("taken"))
        .where(bookings.c.campaign == campaign)
        .group_by(bookings.c.slot_id)
        .subquery()
    )
    used = func.coalesce(taken.c.taken, 0)
    where = [slots.c.campaign == campaign]
    if lycee_uai:
        where.append(slots.c.lycee_uai == lycee_uai)
    if formation_code:
        where.append(slots.c.formation_code == formation_code)
    if start:
        where.append(slots.c.starts_at >= _utc(start))
    if end:
        where.append(slots.c.starts_at < _utc(end))
    if open_only:
        where += [slots.c.closed.is_(False), used < slots.c.capacity]
    joined = slots.outerjoin(taken, taken.c.slot_id == slots.c.slot_id)
    query = (
        select(slots, used.label("taken")).select_from(joined).where(and_(*where))
        .order_by(slots.c.starts_at, slots.c.slot_id).limit(limit).offset(offset or None)
    )
    items = [
        {
            **{k: v for k, v in row._mapping.items()},
            "starts_at": datetime.fromisoformat(row.starts_at).isoformat(),
            "closed": bool(row.closed),
            "free": max(row.capacity - row.taken, 0),
        }
        for row in conn.execute(query)
    ]
    total = conn.execute(select(func.count()).select_from(joined).where(and_(*where))).scalar_one()
    return items, total

