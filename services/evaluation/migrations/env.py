"""Alembic environment of the evaluation service's views."""

from services.evaluation.views import metadata
from shared.runtime.migrations import run_env

run_env(metadata)
