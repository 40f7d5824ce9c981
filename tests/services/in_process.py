"""The three services in this process (FastAPI TestClients over one log), their databases and the key store:
what the erasure and retention tests drive, over HTTP and the `passpro` command, as a rectorat would."""

from __future__ import annotations

import contextlib
import html
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis as redis_sync
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from conftest import Passpro
from services.cli import main
from services.cli.common import app_factory, service_settings
from shared.contracts.streams import StreamKeys, entry_id_key

SERVICES = ("registration", "evaluation", "scoring")


@dataclass
class InProcessServices:
    passpro: Passpro  # tokens, and the académie's keys
    databases: dict[str, tuple[str, str | None]]  # service (and "keystore") -> URL, PostgreSQL schema
    clients: dict[str, TestClient] = field(default_factory=dict)
    services: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def keys(self) -> StreamKeys:
        return self.passpro.keys

    @property
    def redis(self) -> redis_sync.Redis:
        return self.passpro.redis

    def start(self) -> None:
        """Each service as `passpro serve` would make it, from the environment the test set."""
        for name in SERVICES:
            create_app, _ = app_factory(name)
            app = create_app(service_settings(name))
            self.clients[name] = self.services.enter_context(TestClient(app, raise_server_exceptions=False))

    def stop(self) -> None:
        self.services.close()
        self.clients.clear()

    @contextlib.contextmanager
    def engine(self, name: str) -> Iterator[Engine]:
        url, schema = self.databases[name]
        engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"} if schema else {})
        try:
            yield engine
        finally:
            engine.dispose()

    # --- HTTP -------------------------------------------------------------------------------------------------

    def write(self, service: str, path: str, body: dict, role: str, uai: str | None, status: int = 201) -> dict:
        answer = self.clients[service].post(path, json=body, headers=self.passpro.auth(role, uai))
        assert answer.status_code == status, answer.text
        return answer.json()

    def read(self, service: str, path: str, role: str, uai: str | None, **params):
        answer = self.clients[service].get(path, params=params, headers=self.passpro.auth(role, uai))
        assert answer.status_code == 200, answer.text
        return answer

    def page(self, service: str, path: str, role: str, uai: str | None) -> str:
        cookie = f"passpro_{service}={self.passpro.token(role, uai)}"
        answer = self.clients[service].get(path, headers={"Cookie": cookie})
        assert answer.status_code == 200, answer.text
        return html.unescape(answer.text)

    # --- the command and the views ------------------------------------------------------------------------------

    def command(self, capsys, *args: str) -> tuple[int, str, str]:
        """`passpro ...` in process: its exit code, what it printed, and its error output."""
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    def wait_for_positions(self, wanted: dict[str, str], timeout: float = 30.0) -> None:
        """Until every service's view has read each stream of `wanted` up to its entry id."""
        deadline = time.monotonic() + timeout
        for name in SERVICES:
            with self.engine(name) as engine:
                while True:
                    with engine.connect() as conn:
                        at = dict(conn.execute(text("SELECT stream, position FROM stream_positions")).all())
                    if all(k in at and entry_id_key(at[k]) >= entry_id_key(v) for k, v in wanted.items()):
                        break
                    assert time.monotonic() < deadline, f"{name} has not caught up: {at} < {wanted}"
                    time.sleep(0.05)
