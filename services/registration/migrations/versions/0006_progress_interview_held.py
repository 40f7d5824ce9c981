"""« Mes élèves » no longer counts as to do a collège avis that can no longer be given (issue 13): the narrow
progress row says whether an interview of the student was held (then the avis is closed, SPEC §3.1 rule 5).

Backfilled from the stored files with a frozen copy of the rule (any interview whose status is held): this
file must not change when the code does.

Revision ID: 0006
Revises: 0005
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.add_column(
        "student_progress", sa.Column("interview_held", sa.Boolean, nullable=False, server_default=sa.false())
    )
    conn = op.get_bind()
    files = sa.table("student_files", sa.column("campaign"), sa.column("ine"), sa.column("file"))
    progress = sa.table("student_progress", sa.column("campaign"), sa.column("ine"), sa.column("interview_held"))
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
        held = [
            (r.campaign, r.ine) for r in rows
            if any(i.get("status") == "held" for i in (json.loads(r.file).get("interviews") or {}).values())
        ]
        for campaign, ine in held:
            conn.execute(
                progress.update().where(progress.c.campaign == campaign, progress.c.ine == ine).values(interview_held=True)
            )
        last = (rows[-1].campaign, rows[-1].ine)


def downgrade() -> None:
    with op.batch_alter_table("student_progress") as batch:
        batch.drop_column("interview_held")
