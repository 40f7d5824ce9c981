"""Reads of scoring's projection: bonuses, the summary report and the Affelnet file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime

from sqlalchemy import Connection, func, select

from services.scoring.views import exports, student_totals, voeux


def _voeu(row) -> dict:
    return {
        "lycee_uai": row.lycee_uai,
        "formation_code": row.formation_code,
        "lycee_avis": row.lycee_avis,
        "bonus_points": row.bonus_points,
        "college_avis_present": row.college_avis_present,
    }


def student_bonus(conn: Connection, campaign: str, ine: str) -> dict | None:
    total = conn.execute(
        select(student_totals).where(student_totals.c.campaign == campaign, student_totals.c.ine == ine)
    ).first()
    if total is None:
        return None
    rows = conn.execute(
        select(voeux)
        .where(voeux.c.campaign == campaign, voeux.c.ine == ine)
        .order_by(voeux.c.lycee_uai, voeux.c.formation_code)
    )
    return {
        "ine": ine,
        "campaign": campaign,
        "total_bonus_points": total.total_bonus_points,
        "withdrawn": total.withdrawn,
        "voeux": [_voeu(r) for r in rows],
    }


def bonus_rows(
    conn: Connection,
    campaign: str,
    *,
    lycee_uai: str | None,
    formation_code: str | None,
    college_uai: str | None,
    min_points: int | None,
    limit: int,
    offset: int,
) -> tuple[list[dict], int]:
    where = [voeux.c.campaign == campaign]
    if lycee_uai:
        where.append(voeux.c.lycee_uai == lycee_uai)
    if formation_code:
        where.append(voeux.c.formation_code == formation_code)
    if college_uai:
        where.append(voeux.c.college_uai == college_uai)
    if min_points is not None:
        where.append(voeux.c.bonus_points >= min_points)
    total = conn.execute(select(func.count()).select_from(voeux).where(*where)).scalar_one()
    rows = conn.execute(
        select(voeux)
        .where(*where)
        .order_by(voeux.c.ine, voeux.c.lycee_uai, voeux.c.formation_code)
        .limit(limit)
        .offset(offset)
    )
    return [{"ine": r.ine, "college_uai": r.college_uai, **_voeu(r)} for r in rows], total


def summary(conn: Connection, campaign: str) -> dict:
    def counts(*columns, table=voeux, where=()) -> list[dict]:
        query = (
            select(*columns, func.count().label("count"))
            .where(table.c.campaign == campaign, *where)
            .group_by(*columns)
            .order_by(*columns)
        )
        return [dict(r._mapping) for r in conn.execute(query)]

    return {
        "campaign": campaign,
        "students": conn.execute(
            select(func.count()).select_from(student_totals).where(student_totals.c.campaign == campaign)
        ).scalar_one(),
        "college_avis": counts(student_totals.c.college_avis, table=student_totals),
        "college_avis_by_college": counts(
            student_totals.c.college_uai, student_totals.c.college_avis, table=student_totals
        ),
        "lycee_avis": counts(voeux.c.lycee_avis),
        "lycee_avis_by_lycee_and_formation": counts(voeux.c.lycee_uai, voeux.c.formation_code, voeux.c.lycee_avis),
        "interviews_held": conn.execute(
            select(func.count()).select_from(voeux).where(voeux.c.campaign == campaign, voeux.c.interview_held)
        ).scalar_one(),
        "missing_college_avis": conn.execute(
            select(func.count())
            .select_from(voeux)
            .where(voeux.c.campaign == campaign, voeux.c.interview_held, voeux.c.college_avis_present.is_(False))
        ).scalar_one(),
        "bonuses_granted": conn.execute(
            select(func.count()).select_from(voeux).where(voeux.c.campaign == campaign, voeux.c.bonus_points > 0)
        ).scalar_one(),
    }


def affelnet_csv(conn: Connection, campaign: str) -> tuple[str, int]:
    """The Affelnet file: `;`-separated, one row per vœu with a bonus, sorted by INE."""
    rows = conn.execute(
        select(voeux.c.ine, voeux.c.lycee_uai, voeux.c.formation_code, voeux.c.bonus_points)
        .where(voeux.c.campaign == campaign, voeux.c.bonus_points > 0)
        .order_by(voeux.c.ine, voeux.c.lycee_uai, voeux.c.formation_code)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["INE", "UAI_ACCUEIL", "CODE_MEF", "BONUS"])
    writer.writerows(rows)
    return out.getvalue(), len(rows)


def record_export(conn: Connection, campaign: str, user_id: str, positions: dict[str, str], content: str, rows: int) -> str:
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    conn.execute(
        exports.insert().values(
            campaign=campaign,
            exported_at=datetime.now(UTC).isoformat(),
            user_id=user_id,
            positions=json.dumps(positions, sort_keys=True),
            rows=rows,
            sha256=digest,
        )
    )
    return digest
