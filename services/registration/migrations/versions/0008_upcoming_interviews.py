"""The day's work (SPEC §7): the référent's students with an interview to come that is not ready. One narrow row
per scheduled interview, with its time, the student's référent and whether its preparation checklist is complete.

Backfilled from the stored files with a frozen copy of the rule (scheduled interviews; ready when the itinerary,
the printed letter and the materials are ticked, and the equipment for a distanciel one): this file must not change
when the code does.

Revision ID: 0008
Revises: 0007
"""

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "upcoming_interviews",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("ine", sa.String(11), nullable=False),
        sa.Column("interview_id", sa.String(64), nullable=False),
        sa.Column("college_uai", sa.String(8)),
        sa.Column("referent_user_id", sa.String(128)),
        sa.Column("lycee_uai", sa.String(8), nullable=False),
        sa.Column("formation_code", sa.String(11), nullable=False),
        sa.Column("scheduled_at", sa.String(40), nullable=False),
        sa.Column("ready", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("campaign", "ine", "interview_id", name="pk_upcoming_interviews"),
    )
    op.create_index(
        "ix_upcoming_interviews_college_time", "upcoming_interviews", ["campaign", "college_uai", "scheduled_at"]
    )
    conn = op.get_bind()
    files = sa.table("student_files", sa.column("campaign"), sa.column("ine"), sa.column("file"))
    table = sa.table(
        "upcoming_interviews", *(sa.column(c) for c in (
            "campaign", "ine", "interview_id", "college_uai", "referent_user_id", "lycee_uai", "formation_code",
            "scheduled_at", "ready",
        ))
    )
    last = ("", "")
    while True:  # a thousand files at a time, by key
        rows = conn.execute(
            sa.select(files.c.campaign, files.c.ine, files.c.file)
            .where(sa.tuple_(files.c.campaign, files.c.ine) > sa.tuple_(sa.literal(last[0]), sa.literal(last[1])))
            .order_by(files.c.campaign, files.c.ine)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        found = []
        for r in rows:
            file = json.loads(r.file)
            if file.get("withdrawn"):
                continue
            preparations = file.get("preparations") or {}
            for interview in (file.get("interviews") or {}).values():
                if interview.get("status") != "scheduled" or not interview.get("scheduled_at"):
                    continue
                p = preparations.get(interview["interview_id"]) or {}
                ready = bool(p.get("itinerary_ready") and p.get("letter_printed") and p.get("materials_ready")) and (
                    interview.get("mode") != "distanciel" or bool(p.get("equipment_ready"))
                )
                found.append({
                    "campaign": r.campaign, "ine": r.ine, "interview_id": interview["interview_id"],
                    "college_uai": file.get("college_uai"), "referent_user_id": (file.get("referent") or {}).get("user_id"),
                    "lycee_uai": interview["lycee_uai"], "formation_code": interview["formation_code"],
                    # RFC 3339 in UTC as the view writes it (the file's JSON says Z), so its text orders as time
                    "scheduled_at": datetime.fromisoformat(interview["scheduled_at"]).astimezone(timezone.utc).isoformat(),
                    "ready": ready,
                })
        if found:
            conn.execute(table.insert(), found)
        last = (rows[-1].campaign, rows[-1].ine)


def downgrade() -> None:
    op.drop_index("ix_upcoming_interviews_college_time", "upcoming_interviews")
    op.drop_table("upcoming_interviews")
