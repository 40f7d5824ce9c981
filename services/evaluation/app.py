"""The evaluation service: create_app(settings) builds it; nothing is connected before it starts."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.evaluation import api, pages, slots
from services.evaluation.settings import EvaluationSettings
from services.evaluation.views import InterviewsView
from shared.runtime.http.app import build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: EvaluationSettings) -> FastAPI:
    app = build_app(
        name="evaluation",
        title="Passpro — évaluation (lycée)",
        settings=settings,
        database_url=settings.resolved_database_url(),
        migrations_dir=MIGRATIONS,
        make_view=InterviewsView,
        routers=[api.router, slots.router],
    )
    pages.install(app)
    return app
