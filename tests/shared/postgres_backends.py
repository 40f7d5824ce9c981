"""What a PostgreSQL restart does to a pool, done by hand: the backends of a test's connections killed."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def kill_backends(postgres_url: str, application_name: str) -> int:
    """Terminate every backend whose connection named itself `application_name`; how many there were."""
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"
            ), {"name": application_name}).all())
    finally:
        engine.dispose()
