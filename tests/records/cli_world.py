"""What the records' CLI tests (erasure, retention) give the services and the `passpro` command: a database
per service and the key store's — SQLite files in a folder, or PostgreSQL schemas — and the PASSPRO_*
variables that name them, read alike by the services in process and by the command."""

from __future__ import annotations

from base64 import b64encode
from pathlib import Path

import pytest

from in_process import SERVICES
from services_world import Passpro
from shared.runtime.keys.crypto import new_key
from shared.runtime.keys.store import SCHEMA as KEYSTORE_SCHEMA

Databases = dict[str, tuple[str, str | None]]  # service or "keystore" -> (URL, schema)

# Left from the developer's shell or another test, they would change what the test runs against.
UNSET = (
    "PASSPRO_DATABASE_URL", "PASSPRO_CHECKPOINT_KEY", "PASSPRO_CONSUMER_PAGE_SIZE", "PASSPRO_PURGE_DELAY_DAYS",
    *(f"PASSPRO_{service.upper()}_DATABASE_SCHEMA" for service in SERVICES),
)


def databases_of(request: pytest.FixtureRequest, folder: Path, kind: str) -> Databases:
    """SQLite files in `folder` (`kind` "sqlite"), else a schema per service in the test's PostgreSQL schema
    prefix, and the key store's own schema (shared by every test: what the test does must take only its own)."""
    if kind == "sqlite":
        files = {**{name: name for name in SERVICES}, "keystore": "keys"}
        return {name: (f"sqlite:///{folder / f'{file}.sqlite3'}", None) for name, file in files.items()}
    url, prefix = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
    databases: Databases = {name: (url, f"{prefix}_{name[:4]}") for name in SERVICES}
    databases["keystore"] = (url, KEYSTORE_SCHEMA)
    return databases


def set_environment(
    monkeypatch: pytest.MonkeyPatch,
    passpro: Passpro,
    databases: Databases,
    data_dir: Path,
    campaign: str,
    **more: str,
) -> dict[str, str]:
    """Set (for the test only) the académie's log, the campaign in force, secrets, data folder and databases,
    and `more` (PASSPRO_… names); unset UNSET unless given. The variables set."""
    env = {
        "PASSPRO_REDIS_URL": passpro.redis_url,
        "PASSPRO_ACADEMIE": passpro.academie,
        "PASSPRO_CAMPAIGN": campaign,
        "PASSPRO_JWT_SECRET": passpro.secret,
        "PASSPRO_DATA_DIR": str(data_dir),
        "PASSPRO_MASTER_KEY": b64encode(new_key()).decode(),
        "PASSPRO_KEYSTORE_DATABASE_URL": databases["keystore"][0],
        "PASSPRO_READ_WAIT_SECONDS": "10",
        **more,
    }
    for name in SERVICES:
        url, schema = databases[name]
        env[f"PASSPRO_{name.upper()}_DATABASE_URL"] = url
        if schema:
            env[f"PASSPRO_{name.upper()}_DATABASE_SCHEMA"] = schema
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
