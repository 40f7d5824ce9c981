"""`passpro up` and the commands beside it, as a user runs them: real processes, a clean environment
(no PASSPRO_* variable), a temporary directory as the working directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPRO_")}
    env["PYTHONPATH"] = str(REPO_ROOT)  # this checkout's code, wherever the command runs from
    env["PYTHONUNBUFFERED"] = "1"
    return env


def passpro(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def free_port_base() -> int:
    """A port N such that N, N+1 and N+2 are free now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 2 > 65535:
            continue
        sockets = []
        try:
            for port in (base, base + 1, base + 2):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no three consecutive free ports")


def files_under(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def wait_for(condition: Callable[[], object], what: Callable[[], str], timeout: float = 90, poll: float = 0.05):
    """Poll until `condition()` is truthy (its value is returned); fail with `what()` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not so after {timeout} s: {what()}")


def read_record(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / "up.json").read_text())
    except (OSError, ValueError):
        return None


def session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[3])  # state, ppid, pgrp, session


def processes_in_session(sid: int) -> list[int]:
    """Every live (not zombie) process of a session: what `passpro up`, its own session's leader, started."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and session_of(int(entry.name)) == sid:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    return session_of(pid) is not None


@dataclass
class Up:
    """One `passpro up`, in its own session (so everything it starts can be found, even once orphaned)."""

    process: subprocess.Popen
    cwd: Path
    data_dir: Path
    out: Path
    err: Path

    @classmethod
    def start(cls, cwd: Path, *args: str, data_dir: Path | None = None) -> Up:
        out, err = cwd / f"up-{os.getpid()}-{time.monotonic_ns()}.out", cwd / f"up-{time.monotonic_ns()}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen([sys.executable, "-m", "services.cli", "up", *args], cwd=cwd, env=clean_env(),
                                       stdout=stdout, stderr=stderr, start_new_session=True)
        return cls(process, cwd, data_dir or cwd / ".passpro", out, err)

    def output(self) -> str:
        return f"--- stdout\n{self.out.read_text()}\n--- stderr\n{self.err.read_text()}"

    def record(self) -> dict | None:
        return read_record(self.data_dir)

    def wait_ready(self) -> dict:
        def ready():
            assert self.process.poll() is None, f"passpro up exited {self.process.returncode}\n{self.output()}"
            record = self.record()
            return record if record and record["state"] == "ready" else None

        return wait_for(ready, lambda: f"passpro up ready\n{self.output()}")

    def terminate(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill_session(self) -> None:
        """The last resort of a failed test: nothing of it may outlive the test run."""
        for pid in processes_in_session(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
