"""The day's work (SPEC §7): the proviseur's « avis à donner » are the held interviews with no lycée avis, a SQL
filter on the interviews' rows, which now carry the latest lycée avis given on the interview.

Backfilled from the stored files with a frozen copy of the rule (the vœu's latest avis, by version, when it was
given on this interview): this file must not change when the code does.

Revision ID: 0004
Revises: 0003
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.add_column("interviews", sa.Column("lycee_avis", sa.String(12)))
    conn = op.get_bind()
    files = sa.table("student_files", sa.column("campaign"), sa.column("ine"), sa.column("file"))
    rows_table = sa.table(
        "interviews", sa.column("campaign"), sa.column("ine"), sa.column("interview_id"), sa.column("lycee_avis")
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
        for r in rows:
            for history in (json.loads(r.file).get("lycee_avis") or {}).values():
                if not history:
                    continue
                latest = max(history, key=lambda a: a.get("version", 0))
                conn.execute(
                    rows_table.update()
                    .where(rows_table.c.campaign == r.campaign, rows_table.c.ine == r.ine,
                           rows_table.c.interview_id == latest.get("interview_id"))
                    .values(lycee_avis=latest.get("avis"))
                )
        last = (rows[-1].campaign, rows[-1].ine)


def downgrade() -> None:
    with op.batch_alter_table("interviews") as batch:
        batch.drop_column("lycee_avis")
