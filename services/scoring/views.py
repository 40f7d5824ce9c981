"""Scoring's projection (SPEC §3.2): one row per vœu and one total per student; the exports made and the
signed checkpoints of the log's heads (the audit's, never touched by the projection)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import BigInteger, Boolean, Column, Connection, Integer, String, Table, Text

from services.scoring.domain import what_scoring_keeps
from shared.contracts.streams import LoggedEvent
from shared.domain.bonus import held_interviews, total_bonus_points, voeu_bonuses
from shared.domain.student_file import AvisGiven, Interview, StudentFile
from shared.fr.formats import PARIS
from shared.runtime.db import new_metadata
from shared.runtime.projection.views import (
    apply_campaigns,
    campaign_bonus_points,
    campaigns_table,
    fold_batch,
    positions_table,
    student_files_table,
    write_student_rows,
)

metadata = new_metadata()
positions = positions_table(metadata)
student_files = student_files_table(metadata)
campaigns = campaigns_table(metadata)
voeux = Table(
    "voeux",
    metadata,
    Column("campaign", String(4), primary_key=True),
    Column("ine", String(11), primary_key=True),
    Column("lycee_uai", String(8), primary_key=True),
    Column("formation_code", String(11), primary_key=True),
    Column("college_uai", String(8), index=True),
    Column("lycee_avis", String(12)),
    Column("bonus_points", Integer, nullable=False),
    Column("interview_held", Boolean, nullable=False),
    Column("college_avis_present", Boolean),
    # The dashboard's progress chart counts by Paris week (the Monday, YYYY-MM-DD): when the interview
    # was held, and when a favorable latest lycée avis was given after it.
    Column("held_week", String(10)),
    Column("favorable_week", String(10)),
)
student_totals = Table(
    "student_totals",
    metadata,
    Column("campaign", String(4), primary_key=True),
    Column("ine", String(11), primary_key=True),
    Column("college_uai", String(8)),
    Column("college_avis", String(16)),
    Column("withdrawn", Boolean, nullable=False),
    Column("total_bonus_points", Integer, nullable=False),
    Column("college_avis_week", String(10)),  # the Paris week the collège avis was given (progress chart)
)
exports = Table(
    "exports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign", String(4), nullable=False),
    Column("exported_at", String(40), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("positions", Text, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
)
# Kept outside Redis on purpose: a stream's head signed with a key Redis never sees (services/records/audit.py).
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(200), nullable=False, index=True),
    Column("entry_id", String(40), nullable=False),
    Column("hash", String(40), nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("recorded_at", String(40), nullable=False),
    Column("hmac", String(64), nullable=False),
)


@lru_cache(maxsize=8192)  # a student's dates come back at each page that changes the student
def paris_week(moment: datetime | None) -> str | None:
    """The Monday of `moment`'s week in Paris, as YYYY-MM-DD (sorts as it dates)."""
    if moment is None:
        return None
    local = moment.astimezone(PARIS).date()
    return (local - timedelta(days=local.weekday())).isoformat()


def milestone_weeks(held: Interview | None, latest: AvisGiven | None) -> dict[str, str | None]:
    """A vœu's weeks for the progress chart, from its held interview and its latest lycée avis: the
    interview's, and the avis's if that avis is favorable and the interview held."""
    held_week = paris_week(held.held_at) if held else None
    favorable = held_week is not None and latest is not None and latest.avis == "favorable"
    return {"held_week": held_week, "favorable_week": paris_week(latest.occurred_at) if favorable else None}


def scoring_rows(file: StudentFile, bonus_points: int) -> tuple[list[dict], dict]:
    """A student's rows: one per vœu, and the total (SPEC §3.2), each interview looked at once."""
    held = held_interviews(file)
    bonuses = voeu_bonuses(file, bonus_points, held)
    voeu_rows = [
        {
            "campaign": file.campaign,
            "ine": file.ine,
            "lycee_uai": v.lycee_uai,
            "formation_code": v.formation_code,
            "college_uai": file.college_uai,
            "lycee_avis": v.lycee_avis,
            "bonus_points": v.bonus_points,
            "interview_held": v.interview_held,
            "college_avis_present": v.college_avis_present,
            **milestone_weeks(held.get((v.lycee_uai, v.formation_code)), file.latest_lycee_avis(v.lycee_uai, v.formation_code)),
        }
        for v in bonuses
    ]
    total = {
        "campaign": file.campaign,
        "ine": file.ine,
        "college_uai": file.college_uai,
        "college_avis": file.college_avis,
        "withdrawn": file.withdrawn,
        "total_bonus_points": total_bonus_points(bonuses),
        "college_avis_week": paris_week(file.college_avis_at),
    }
    return voeu_rows, total


class BonusProjection:
    name = "scoring-bonuses"
    positions = positions
    personal_tables = (student_files,)

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        apply_campaigns(conn, campaigns, events)
        files = fold_batch(conn, student_files, events, keep=what_scoring_keeps)
        if not files:
            return
        points = campaign_bonus_points(conn, campaigns)
        rows = [(file, scoring_rows(file, points.get(file.campaign, 0))) for file in files]
        # only the rows that changed since the student's kept file are written (views.write_student_rows)
        write_student_rows(conn, voeux, [(file, voeu_rows) for file, (voeu_rows, _) in rows])
        write_student_rows(conn, student_totals, [(file, [total]) for file, (_, total) in rows])
