"""The registration service: create_app(settings) builds it; nothing is connected before it starts."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.registration import api, educonnect, letters_api, pages
from services.registration import student_api, student_pages
from services.registration import formations
from services.registration import letters
from services.registration.settings import RegistrationSettings
from services.registration.views import StudentsView, sign_in_failures
from shared.runtime import tries
from shared.runtime.http.app import build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: RegistrationSettings) -> FastAPI:
    app = build_app(
        name="registration",
        title="Passpro — inscription (collège)",
        settings=settings,
        database_url=settings.resolved_database_url(),
        migrations_dir=MIGRATIONS,
        make_view=StudentsView,
        routers=[api.router, letters_api.router, student_api.router],
        # EduConnect's starts per address and the wrong access codes per INE, beside the académie's starts
        tries_tables=(tries.sign_in_starts, sign_in_failures),
    )
    pages.install(app)
    formations.install(app)
    student_pages.install(app)
    letters.install(app)
    educonnect.install(app, settings)
    return app
