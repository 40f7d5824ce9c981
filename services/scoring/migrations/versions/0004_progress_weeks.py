"""The Paris weeks of each student's milestones, for the dashboard's progress chart (issue 12, finding 5):
the chart counts them by week in SQL instead of parsing every stored file on each view.

Backfilled from the stored files, with a frozen copy of the projection's rule (services/scoring/views.py,
`paris_week` and `milestone_weeks`): this file must not change when the code does. A view rebuilt from
the log (`passpro rebuild`) fills the same columns through the projection.

Revision ID: 0004
Revises: 0003
"""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PARIS = ZoneInfo("Europe/Paris")
BATCH = 1000


def _week(moment: str | None) -> str | None:
    if not moment:
        return None
    local = datetime.fromisoformat(moment).astimezone(PARIS).date()
    return (local - timedelta(days=local.weekday())).isoformat()


def _weeks(file: dict) -> tuple[str | None, list[dict]]:
    """The student's collège avis week, and one row of weeks per vœu with a held interview."""
    voeux = []
    for interview in (file.get("interviews") or {}).values():
        if interview.get("status") != "held":
            continue
        lycee, formation = interview["lycee_uai"], interview["formation_code"]
        held = _week(interview.get("held_at"))
        history = (file.get("lycee_avis") or {}).get(f"{lycee}:{formation}") or []
        latest = max(history, key=lambda a: a["version"]) if history else None
        favorable = held is not None and latest is not None and latest["avis"] == "favorable"
        voeux.append({"l": lycee, "f": formation, "held": held, "fav": _week(latest["occurred_at"]) if favorable else None})
    return _week(file.get("college_avis_at")), voeux


def _backfill(conn) -> None:
    files = sa.table("student_files", sa.column("campaign"), sa.column("ine"), sa.column("file"))
    totals = sa.table("student_totals", sa.column("campaign"), sa.column("ine"), sa.column("college_avis_week"))
    voeux = sa.table(
        "voeux", sa.column("campaign"), sa.column("ine"), sa.column("lycee_uai"), sa.column("formation_code"),
        sa.column("held_week"), sa.column("favorable_week"),
    )
    set_total = (
        totals.update()
        .where(totals.c.campaign == sa.bindparam("c"), totals.c.ine == sa.bindparam("i"))
        .values(college_avis_week=sa.bindparam("w"))
    )
    set_voeu = (
        voeux.update()
        .where(
            voeux.c.campaign == sa.bindparam("c"), voeux.c.ine == sa.bindparam("i"),
            voeux.c.lycee_uai == sa.bindparam("l"), voeux.c.formation_code == sa.bindparam("f"),
        )
        .values(held_week=sa.bindparam("held"), favorable_week=sa.bindparam("fav"))
    )
    total_rows, voeu_rows = [], []

    def flush() -> None:
        if total_rows:
            conn.execute(set_total, total_rows)
        if voeu_rows:
            conn.execute(set_voeu, voeu_rows)
        total_rows.clear()
        voeu_rows.clear()

    last = ("", "")
    while True:  # a thousand files at a time, by key: memory stays flat at 100,000 students
        rows = conn.execute(
            sa.select(files.c.campaign, files.c.ine, files.c.file)
            .where(sa.tuple_(files.c.campaign, files.c.ine) > sa.tuple_(sa.literal(last[0]), sa.literal(last[1])))
            .order_by(files.c.campaign, files.c.ine)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            avis_week, weeks = _weeks(json.loads(row.file))
            if avis_week is not None:
                total_rows.append({"c": row.campaign, "i": row.ine, "w": avis_week})
            voeu_rows += [{"c": row.campaign, "i": row.ine, **w} for w in weeks]
        flush()
        last = (rows[-1].campaign, rows[-1].ine)


def upgrade() -> None:
    op.add_column("voeux", sa.Column("held_week", sa.String(10)))
    op.add_column("voeux", sa.Column("favorable_week", sa.String(10)))
    op.add_column("student_totals", sa.Column("college_avis_week", sa.String(10)))
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("student_totals") as batch:
        batch.drop_column("college_avis_week")
    with op.batch_alter_table("voeux") as batch:
        batch.drop_column("favorable_week")
        batch.drop_column("held_week")
