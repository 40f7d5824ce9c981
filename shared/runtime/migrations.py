"""Alembic, driven from code: each service keeps its own migrations folder and its own schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

from shared.runtime.db import ensure_schema, make_engine


def alembic_config(migrations_dir: Path, url: str, schema: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["url"] = url
    config.attributes["schema"] = schema
    return config


def upgrade(migrations_dir: Path, url: str, schema: str | None) -> None:
    ensure_schema(url, schema)
    command.upgrade(alembic_config(migrations_dir, url, schema), "head")


def is_up_to_date(migrations_dir: Path, engine: Engine) -> bool:
    head = ScriptDirectory(str(migrations_dir)).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py (online mode only: views are never migrated offline)."""
    from alembic import context

    config = context.config
    engine = make_engine(config.attributes["url"], config.attributes.get("schema"))
    try:
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        engine.dispose()


def create_view_tables() -> None:
    """The tables every view starts with (positions, student files, campaigns), for each service's
    first migration. Frozen: a later change to them is a new migration, never an edit here."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "stream_positions",
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("position", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("stream", name="pk_stream_positions"),
    )
    op.create_table(
        "student_files",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("ine", sa.String(11), nullable=False),
        sa.Column("college_uai", sa.String(8)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("campaign", "ine", name="pk_student_files"),
    )
    op.create_index("ix_student_files_college_uai", "student_files", ["college_uai"])
    op.create_table(
        "campaigns",
        sa.Column("campaign", sa.String(4), nullable=False),
        sa.Column("bonus_points", sa.Integer, nullable=False),
        sa.Column("closes_at", sa.String(40)),
        sa.PrimaryKeyConstraint("campaign", name="pk_campaigns"),
    )


def drop_view_tables() -> None:
    from alembic import op

    op.drop_table("campaigns")
    op.drop_index("ix_student_files_college_uai", "student_files")
    op.drop_table("student_files")
    op.drop_table("stream_positions")
