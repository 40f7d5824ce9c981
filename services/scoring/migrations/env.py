"""Alembic environment of the scoring service's projection."""

from services.scoring.views import metadata
from shared.runtime.migrations import run_env

run_env(metadata)
