"""Alembic environment of the notifier's tables."""

from services.notifier.ledger import metadata
from shared.runtime.migrations import run_env

run_env(metadata)
