"""After PostgreSQL killed the pool's backends (what a restart does to it), a read answers 200, not 503 — the views'
engine tests each connection at checkout and replaces a dropped one — and the consumer goes on applying the log."""

from __future__ import annotations

from uuid import uuid4

from fastapi.testclient import TestClient

from conftest import Passpro, _service
from postgres_backends import kill_backends
from shared.runtime.db import ensure_schema
from shared.runtime.migrations import upgrade
from test_http_api import INE, OTHER_INE, principal, student_body


def _students(answer) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {student["ine"] for student in answer.json()["items"]}


def test_after_the_views_backends_are_killed_a_read_answers_and_the_consumer_goes_on(
    passpro: Passpro, postgres_url: str, pg_schema: str, monkeypatch
) -> None:
    name = f"passpro-test-{uuid4().hex[:8]}"  # this test's connections, to kill them and no one else's
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}application_name={name}"
    monkeypatch.setattr(passpro, "database_url", lambda service: url)
    _, migrations, create_app = _service("registration")
    ensure_schema(url, pg_schema)
    upgrade(migrations, url, pg_schema)
    settings = passpro.settings("registration").model_copy(update={"database_schema": pg_schema})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        first = client.post("/api/students", json=student_body(), headers=principal(passpro))
        assert first.status_code == 201, first.text
        position = first.json()["positions"]["service"]
        assert _students(client.get("/api/students", params={"min_position": position},
                                    headers=principal(passpro))) == {INE}

        # The consumer has just committed and waits on the log: the read is the first to meet a killed connection.
        assert kill_backends(postgres_url, name) >= 1
        assert _students(client.get("/api/students", headers=principal(passpro))) == {INE}

        # The consumer's own connection was killed too: it reads its page again and applies it.
        assert kill_backends(postgres_url, name) >= 1
        second = client.post("/api/students", json=student_body(ine=OTHER_INE), headers=principal(passpro))
        assert second.status_code == 201, second.text
        position = second.json()["positions"]["service"]
        assert _students(client.get("/api/students", params={"min_position": position},
                                    headers=principal(passpro))) == {INE, OTHER_INE}
