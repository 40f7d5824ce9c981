"""Reads of scoring's projection: bonuses, the summary report, the dashboard's figures and the Affelnet file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy import Connection, desc, func, select

from services.scoring.views import exports, student_files, student_totals, voeux
from shared.domain.student_file import StudentFile


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


def of_voeux(college: str | None, lycee: str | None, formation: str | None) -> list:
    """The dashboard's and the list's filters on the vœux rows: a collège, a lycée, a formation (None: any)."""
    chosen = [(voeux.c.college_uai, college), (voeux.c.lycee_uai, lycee), (voeux.c.formation_code, formation)]
    return [column == value for column, value in chosen if value]


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
    where = [voeux.c.campaign == campaign, *of_voeux(college_uai, lycee_uai, formation_code)]
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


def _null_sort(conn: Connection):
    """Sort key of a nullable code as the database orders it: NULL last on PostgreSQL, first on SQLite."""
    nulls_last = conn.dialect.name == "postgresql"
    return lambda value: ((value is None) == nulls_last, value or "")


def summary(conn: Connection, campaign: str) -> dict:
    """The campaign's counts, from two grouped scans (one of the totals, one of the vœux) instead of one
    per figure: every figure is a sum over the finest groups, which are a few dozen rows."""
    by_college = conn.execute(
        select(student_totals.c.college_uai, student_totals.c.college_avis, func.count().label("count"))
        .where(student_totals.c.campaign == campaign)
        .group_by(student_totals.c.college_uai, student_totals.c.college_avis)
        .order_by(student_totals.c.college_uai, student_totals.c.college_avis)
    ).all()
    held = voeux.c.interview_held
    by_formation = conn.execute(
        select(
            voeux.c.lycee_uai,
            voeux.c.formation_code,
            voeux.c.lycee_avis,
            func.count().label("count"),
            func.count().filter(held).label("held"),
            func.count().filter(held, voeux.c.college_avis_present.is_(False)).label("missing_college_avis"),
            func.count().filter(voeux.c.bonus_points > 0).label("bonuses"),
        )
        .where(voeux.c.campaign == campaign)
        .group_by(voeux.c.lycee_uai, voeux.c.formation_code, voeux.c.lycee_avis)
        .order_by(voeux.c.lycee_uai, voeux.c.formation_code, voeux.c.lycee_avis)
    ).all()

    def totals_by(rows, column: str) -> list[dict]:
        counts: dict[str | None, int] = {}
        for row in rows:
            counts[getattr(row, column)] = counts.get(getattr(row, column), 0) + row.count
        return [{column: value, "count": counts[value]} for value in sorted(counts, key=_null_sort(conn))]

    return {
        "campaign": campaign,
        "students": sum(r.count for r in by_college),
        "college_avis": totals_by(by_college, "college_avis"),
        "college_avis_by_college": [
            {"college_uai": r.college_uai, "college_avis": r.college_avis, "count": r.count} for r in by_college
        ],
        "lycee_avis": totals_by(by_formation, "lycee_avis"),
        "lycee_avis_by_lycee_and_formation": [
            {"lycee_uai": r.lycee_uai, "formation_code": r.formation_code, "lycee_avis": r.lycee_avis, "count": r.count}
            for r in by_formation
        ],
        "interviews_held": sum(r.held for r in by_formation),
        "missing_college_avis": sum(r.missing_college_avis for r in by_formation),
        "bonuses_granted": sum(r.bonuses for r in by_formation),
    }


def dashboard_figures(
    conn: Connection, campaign: str, college: str | None, lycee: str | None, formation: str | None
) -> dict:
    """Counts for the rectorat's dashboard, restricted to a collège, a lycée and/or a formation."""
    v, t = voeux, student_totals
    voeu_where = [v.c.campaign == campaign, *of_voeux(college, lycee, formation)]
    student_where = [t.c.campaign == campaign]
    if college:
        student_where.append(t.c.college_uai == college)
    if lycee or formation:
        student_where.append(t.c.ine.in_(select(v.c.ine).where(*voeu_where)))

    def count(table, *where) -> int:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

    held = [*voeu_where, v.c.interview_held]
    college_avis = dict(
        conn.execute(
            select(t.c.college_avis, func.count())
            .where(*student_where, t.c.withdrawn.is_(False))
            .group_by(t.c.college_avis)
        ).all()
    )
    lycee_avis = dict(conn.execute(select(v.c.lycee_avis, func.count()).where(*held).group_by(v.c.lycee_avis)).all())
    by_voeu = conn.execute(
        select(v.c.lycee_uai, v.c.formation_code, func.sum(v.c.bonus_points), func.count())
        .where(*voeu_where, v.c.bonus_points > 0)
        .group_by(v.c.lycee_uai, v.c.formation_code)
        .order_by(desc(func.sum(v.c.bonus_points)), v.c.lycee_uai, v.c.formation_code)
    ).all()
    return {
        "students": count(t, *student_where),
        "withdrawn": count(t, *student_where, t.c.withdrawn),
        "college_avis": college_avis,
        "lycee_avis": lycee_avis,
        "voeux": count(v, *voeu_where),
        "held": count(v, *held),
        "missing_college_avis": count(v, *held, v.c.college_avis_present.is_(False)),
        "bonuses": count(v, *voeu_where, v.c.bonus_points > 0),
        "points": conn.execute(select(func.coalesce(func.sum(v.c.bonus_points), 0)).where(*voeu_where)).scalar_one(),
        "by_voeu": [(row[0], row[1], int(row[2]), row[3]) for row in by_voeu],
        "exports": conn.execute(
            select(exports).where(exports.c.campaign == campaign).order_by(desc(exports.c.id)).limit(3)
        ).all(),
    }


def weekly_milestones(
    conn: Connection, campaign: str, college: str | None, lycee: str | None, formation: str | None
) -> dict[str, Counter[date]]:
    """How many collège avis were given, interviews held and favorable lycée avis given in each Paris week
    (its Monday), among the students not withdrawn; the lycée and formation filters apply to interviews and
    avis. Grouped in SQL from the weeks the projection keeps: a few dozen rows, whatever the campaign's size."""
    t, v = student_totals, voeux
    active = [t.c.campaign == campaign, t.c.withdrawn.is_(False)]
    if college:
        active.append(t.c.college_uai == college)
    of_voeu = of_voeux(None, lycee, formation)
    with_students = v.join(t, (t.c.campaign == v.c.campaign) & (t.c.ine == v.c.ine))

    def by_week(week, source, *where) -> Counter[date]:
        rows = conn.execute(
            select(week, func.count()).select_from(source).where(*active, *where, week.is_not(None)).group_by(week)
        )
        return Counter({date.fromisoformat(w): n for w, n in rows})

    return {
        "avis": by_week(t.c.college_avis_week, t),
        "held": by_week(v.c.held_week, with_students, *of_voeu),
        "favorable": by_week(v.c.favorable_week, with_students, *of_voeu),
    }


def files_of(conn: Connection, campaign: str, ines: list[str]) -> list[StudentFile]:
    """The stored files of these students only (a shown page's): no list reads every file."""
    rows = conn.execute(select(student_files.c.file).where(student_files.c.campaign == campaign, student_files.c.ine.in_(ines)))
    return [StudentFile.model_validate_json(row.file) for row in rows]


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
