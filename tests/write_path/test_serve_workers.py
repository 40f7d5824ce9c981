"""`passpro serve registration --workers 2` (services/cli/serve.py): two processes answer on one port (SO_REUSEPORT),
one of them applies the log (the view's lease) and a write through either is read back, up to date, through both.
Real processes on PostgreSQL (the view and the key store) and Redis."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from event_factories import CAMPAIGN  # the campaign to come, counted in Paris (2027 until its rentrée)
from services.cli.common import app_factory
from services.cli.up import wait_ready
from shared.contracts.reference import default_reference_text, parse_reference
from shared.runtime.http.auth import issue_token
from shared.runtime.migrations import upgrade

REPO_ROOT = Path(__file__).resolve().parents[2]
PORT = 19231  # this area's range: 19200-19299
COLLEGE = "0752536Z"  # Collège Voltaire


def applied(url: str) -> int:
    """The events this connection's worker applied to the view (a fresh connection each time: any worker)."""
    with httpx.Client(timeout=10) as http:
        metrics = http.get(f"{url}/metrics").text
    return int(metrics.strip().rsplit(" ", 1)[-1])


@pytest.fixture
def workers(redis_url: str, postgres_url: str, pg_schema: str, academie: str, tmp_path: Path) -> Iterator[dict]:
    campaign = CAMPAIGN
    run = f"{secrets.randbelow(10**6):06d}"  # the key store's schema is shared: this run's own INEs
    secret = secrets.token_urlsafe(48)
    _, migrations = app_factory("registration")
    upgrade(migrations, postgres_url, pg_schema)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPRO_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1", PASSPRO_REDIS_URL=redis_url, PASSPRO_ACADEMIE=academie,
        PASSPRO_CAMPAIGN=campaign, PASSPRO_JWT_SECRET=secret, PASSPRO_DATA_DIR=str(tmp_path),
        PASSPRO_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        PASSPRO_DATABASE_URL=postgres_url, PASSPRO_DATABASE_SCHEMA=pg_schema,
        PASSPRO_KEYSTORE_DATABASE_URL=postgres_url,
    )
    subprocess.run([sys.executable, "-m", "services.cli", "campaign", "open", campaign], env=env, cwd=tmp_path,
                   check=True, capture_output=True, timeout=120)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "registration", "--workers", "2", "--port", str(PORT)],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{PORT}"
    try:
        problem = wait_ready(url, process, timeout=120)
        assert problem is None, f"{problem}\n{log_path.read_text()}"
        reference = parse_reference(default_reference_text())
        token = issue_token(secret, user_id="principal.voltaire", role="principal", uai=COLLEGE,
                            reference=reference, ttl_seconds=3600)
        yield {"url": url, "token": token, "process": process, "log": log_path, "run": run, "campaign": campaign}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        engine = create_engine(postgres_url)
        with engine.begin() as conn:  # this run's keys (their INEs end in WK after the run's digits)
            conn.execute(text("DELETE FROM keystore.student_keys WHERE campaign = :c AND ine LIKE :i"),
                         {"c": campaign, "i": f"{run}%WK"})
        engine.dispose()


def test_two_workers_answer_on_one_port_and_each_reads_what_either_wrote(workers: dict) -> None:
    url, headers = workers["url"], {"Authorization": f"Bearer {workers['token']}"}
    run = workers["run"]
    written = []
    for n in range(12):  # a fresh connection per write: the kernel spreads them over both workers
        with httpx.Client(timeout=30, headers=headers) as http:
            answer = http.post(f"{url}/api/students", json={
                "student_ine": f"{run}{n:03d}WK", "college_uai": COLLEGE, "last_name": f"Worker{n}", "first_name": "Alex",
                "class_name": "3e B",
                "referent": {"user_id": "ref.w", "name": "Référente", "email": "ref@ac-paris.fr"},
            })
        assert answer.status_code == 201, answer.text
        written.append((f"{run}{n:03d}WK", answer.json()["positions"]["service"]))

    # Read back through many connections: every read, whichever worker answers it, waits for the write.
    for ine, position in written:
        for _ in range(4):
            with httpx.Client(timeout=30, headers=headers) as http:
                page = http.get(f"{url}/api/students", params={"min_position": position})
            assert page.status_code == 200, page.text
            assert ine in {s["ine"] for s in page.json()["items"]}

    # Two processes answer: one applies the log (its count grows), the other stands by (none applied).
    counts = {applied(url) for _ in range(40)}
    assert 0 in counts and max(counts) >= len(written), counts
    assert workers["process"].poll() is None


def test_sigterm_stops_every_worker(workers: dict) -> None:
    process = workers["process"]
    pids = [int(p) for p in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)
            .stdout.split()]
    assert len(pids) == 2, workers["log"].read_text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
