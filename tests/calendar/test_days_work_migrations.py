"""The day's work's view rows (SPEC §7) backfilled by their migrations: upgraded over a view projected before they
were kept, each view holds what its projection writes — registration's upcoming_interviews (0008), evaluation's
interviews with their lycée avis (0004) — on SQLite and PostgreSQL."""

from __future__ import annotations

import random

from alembic import command
from sqlalchemy import select

from services.evaluation.app import MIGRATIONS as EVALUATION_MIGRATIONS
from services.evaluation.views import InterviewsView, interviews
from services.registration.app import MIGRATIONS as REGISTRATION_MIGRATIONS
from services.registration.views import StudentsView, upcoming_interviews
from shared.runtime.migrations import alembic_config
from test_paged_reads import database, histories, project, view_engine  # noqa: F401 - database: the fixture


def _rows(engine, table) -> list:
    with engine.connect() as conn:
        return conn.execute(select(table).order_by(*table.primary_key.columns)).all()


def test_the_upcoming_interviews_are_backfilled_from_the_stored_files(database):  # noqa: F811
    engine = view_engine(database, REGISTRATION_MIGRATIONS)
    project(engine, StudentsView(), histories(80, random.Random(9)))
    projected = _rows(engine, upcoming_interviews)
    assert len(projected) > 10 and all(not r.ready for r in projected)
    config = alembic_config(REGISTRATION_MIGRATIONS, *database)
    engine.dispose()
    command.downgrade(config, "0007")
    command.upgrade(config, "head")
    assert _rows(engine, upcoming_interviews) == projected
    engine.dispose()


def test_the_interviews_lycee_avis_is_backfilled_from_the_stored_files(database):  # noqa: F811
    engine = view_engine(database, EVALUATION_MIGRATIONS)
    project(engine, InterviewsView(), histories(80, random.Random(10)))
    projected = _rows(engine, interviews)
    assert any(r.lycee_avis for r in projected) and any(r.status == "held" and r.lycee_avis is None for r in projected)
    config = alembic_config(EVALUATION_MIGRATIONS, *database)
    engine.dispose()
    command.downgrade(config, "0003")
    command.upgrade(config, "head")
    assert _rows(engine, interviews) == projected
    engine.dispose()
