"""Fixtures of the EduConnect tests: a real SAML identity provider (pysaml2's IdP behind uvicorn, on a free port),
its keys and Passpro's, and registration with EduConnect configured against it (campaign 2027 open)."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
import uvicorn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pages"))

from educonnect_world import EduConnectWorld  # noqa: E402
from saml_idp import TestIdP, User  # noqa: E402
from saml_keys import key_and_certificate  # noqa: E402

PORTS = range(18600, 18700)  # this suite's ports when it runs by hand beside others

COLLEGE = "0752536Z"  # Collège Voltaire
STUDENT = User(
    login="lea.martin", educonnect_id="ec-7f3a9c21-lea", affiliation="eleve2d", uai=COLLEGE, birth_date="2011-05-14",
    ine_hash="5f0c1e7a9b2d4c6e8f1a3b5c7d9e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e",
)
OTHER_STUDENT = User(
    login="hugo.petit", educonnect_id="ec-1b2c3d4e-hugo", affiliation="eleve2d", uai=COLLEGE, birth_date="2011-09-02",
    ine_hash="0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", last_name="Petit", first_name="Hugo",
)
OTHER_SCHOOL = "0751790N"  # Collège Pierre Alviset: EduConnect's school for a student Voltaire registered
MOVED_STUDENT = User(
    login="ines.moreau", educonnect_id="ec-5a6b7c8d-ines", affiliation="eleve2d", uai=OTHER_SCHOOL,
    birth_date="2011-03-21", ine_hash="", last_name="Moreau", first_name="Inès",
)
PARENT = User(
    login="parent.martin", educonnect_id="ec-9e8d7c6b-parent", affiliation="resp2d", uai=COLLEGE,
    birth_date="1980-01-30", ine_hash="", first_name="Sophie",
)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18600-18699")


@pytest.fixture(scope="session")
def saml_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("saml-keys")
    return {name: key_and_certificate(directory, name) for name in ("idp", "sp", "forged")}


@pytest.fixture(scope="session")
def idp(saml_keys: dict[str, tuple[Path, Path]]) -> Iterator[TestIdP]:
    """The IdP, served over HTTP by uvicorn in a thread for the whole session, stopped at the end."""
    port = free_port()
    users = {u.login: u for u in (STUDENT, OTHER_STUDENT, MOVED_STUDENT, PARENT)}
    provider = TestIdP(f"http://127.0.0.1:{port}", *saml_keys["idp"], users=users)
    server = uvicorn.Server(uvicorn.Config(provider.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-idp", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test IdP did not start")
        time.sleep(0.02)
    yield provider
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path, idp: TestIdP, saml_keys) -> Iterator[EduConnectWorld]:
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = EduConnectWorld(
            redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client, idp=idp, sp_keys=saml_keys["sp"],
        )
        w.open_campaign()
        yield w
