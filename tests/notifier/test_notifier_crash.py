"""The notifier as a separate process (`python -m services.notifier`), SIGKILLed several times while it sends to
a real SMTP server that takes a little while to answer: every due e-mail is received, the duplicates (a kill
between the server's acceptance and the ledger's commit) are counted and never more than the kills, none lost."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import collections
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from notifier_world import SmtpServer, Student

from tests.shared.event_factories import T0, ine_number, registered, scheduled

STUDENTS = 60
KILLS = 5
ROOT = Path(__file__).resolve().parents[2]


def start(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.notifier"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        server.inbox.delay = 0.03  # the answer comes after the data: a kill lands between them at times
        yield server


async def test_sigkills_while_sending_lose_nothing(log, smtp, academie, redis_url, tmp_path):
    for n in range(STUDENTS):
        student = Student(log, ine_number(100 + n))
        await student.add(registered())
        await student.add(scheduled(at=T0 + timedelta(days=10, minutes=n)))
    env = {**os.environ, "PASSPRO_REDIS_URL": redis_url, "PASSPRO_ACADEMIE": academie, "PASSPRO_CAMPAIGN": CAMPAIGN,
           "PASSPRO_DATA_DIR": str(tmp_path / "notifier"), "PASSPRO_SMTP_URL": smtp.url,
           "PASSPRO_BLOCK_MS": "50", "PASSPRO_TIMER_SECONDS": "0.2", "PYTHONPATH": str(ROOT)}
    kills = 0
    process = start(env)
    try:
        while kills < KILLS:  # kill it each time a few more e-mails came in
            target = len(smtp.inbox.messages) + 4
            deadline = time.monotonic() + 60
            while len(smtp.inbox.messages) < target and time.monotonic() < deadline:
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                time.sleep(0.005)
            assert len(smtp.inbox.messages) >= target, "the notifier stopped sending"
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            process = start(env)
        deadline = time.monotonic() + 90
        while len(set(smtp.inbox.keys())) < STUDENTS and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    keys = smtp.inbox.keys()
    counted = collections.Counter(keys)
    duplicates = sum(c - 1 for c in counted.values())
    print(f"\nnotifier crash test: {STUDENTS} convocations due, {len(keys)} received, {len(counted)} distinct, "
          f"{duplicates} duplicates after {kills} SIGKILLs")
    assert len(counted) == STUDENTS  # none lost
    assert all(k.startswith(f"convocation:{YEAR}:") for k in counted), sorted(counted)[:3]
    assert duplicates <= kills
