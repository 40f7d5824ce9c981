"""The key store out of reach on the write path: without a ping at checkout (shared/runtime/keys/store.py runs a
statement again once only on a connection found dropped), a key store that cannot be reached still answers the
French 503 that tells the caller to retry with the same event_id, and stores nothing."""

from __future__ import annotations

from conftest import Passpro
from shared.runtime.db import make_engine
from shared.runtime.http.guard import UNAVAILABLE_MESSAGE
from test_http_api import principal, student_body


def test_a_write_while_the_key_store_is_out_of_reach_is_a_french_503_that_stores_nothing(passpro: Passpro) -> None:
    before = passpro.snapshot()
    with passpro.client("registration") as client:
        keystore = client.app.state.runtime.log.keystore
        # Nothing listens on 9199 (this test's port range): as a PostgreSQL key store that is down.
        keystore.engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:9199/test", pre_ping=False)
        answer = client.post("/api/students", json=student_body(), headers=principal(passpro))
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "2"
    assert answer.json() == {"error": "unavailable", "message": UNAVAILABLE_MESSAGE}
    assert passpro.snapshot() == before
