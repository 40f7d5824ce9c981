"""« Mes élèves » counts in SQL (issue 12, finding 5): one narrow row per student with what its counters
count, so the page reads a page of files and counts rows instead of parsing every file on each view.

Backfilled from the stored files, with a frozen copy of the view's rule (services/registration/views.py,
`progress_row`): this file must not change when the code does.

Revision ID: 0003
Revises: 0002
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 1000


def _row(campaign: str, ine: str, college_uai: str | None, file: dict) -> dict:
    interviews = (file.get("interviews") or {}).values()
    voeux = {f"{i['lycee_uai']}:{i['formation_code']}" for i in interviews}
    avis = file.get("lycee_avis") or {}
    return {
        "campaign": campaign,
        "ine": ine,
        "college_uai": college_uai,
        "withdrawn": bool(file.get("withdrawn")),
        "college_avis_given": file.get("college_avis") is not None,
        "scheduled_interviews": sum(1 for i in interviews if i.get("status") == "scheduled"),
        "favorable_voeux": sum(1 for v in voeux if avis.get(v) and avis[v][-1]["avis"] == "favorable"),
    }


def upgrade() -> None:
    progress = op.create_table(
        "student_progress",
        sa.Column("campaign", sa.String(4), primary_key=True),
        sa.Column("ine", sa.String(11), primary_key=True),
        sa.Column("college_uai", sa.String(8)),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("college_avis_given", sa.Boolean, nullable=False),
        sa.Column("scheduled_interviews", sa.Integer, nullable=False),
        sa.Column("favorable_voeux", sa.Integer, nullable=False),
    )
    op.create_index("ix_student_progress_campaign_college", "student_progress", ["campaign", "college_uai"])
    conn = op.get_bind()
    files = sa.table("student_files", sa.column("campaign"), sa.column("ine"), sa.column("college_uai"), sa.column("file"))
    last = ("", "")
    while True:  # a thousand files at a time, by key: memory stays flat at 100,000 students
        rows = conn.execute(
            sa.select(files.c.campaign, files.c.ine, files.c.college_uai, files.c.file)
            .where(sa.tuple_(files.c.campaign, files.c.ine) > sa.tuple_(sa.literal(last[0]), sa.literal(last[1])))
            .order_by(files.c.campaign, files.c.ine)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(progress.insert(), [_row(r.campaign, r.ine, r.college_uai, json.loads(r.file)) for r in rows])
        last = (rows[-1].campaign, rows[-1].ine)


def downgrade() -> None:
    op.drop_index("ix_student_progress_campaign_college", "student_progress")
    op.drop_table("student_progress")
