"""Alembic environment of the registration service's views."""

from services.registration.views import metadata
from shared.runtime.migrations import run_env

run_env(metadata)
