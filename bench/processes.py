"""The services under test as separate processes (`passpro serve NAME --port P`), and `passpro rebuild`'s work in one."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def passpro_command() -> list[str]:
    """The installed `passpro` command, or the same entry point through this interpreter."""
    installed = shutil.which("passpro")
    if installed:
        return [installed]
    return [sys.executable, "-m", "services.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), in MB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path
    peak_mb: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def sample_memory(self) -> float:
        now = peak_rss_mb(self.process.pid)
        if now is not None:
            self.peak_mb = max(self.peak_mb, now)
        return self.peak_mb

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 60) -> None:
        from services.cli.up import wait_ready

        last = wait_ready(self.url, self.process, timeout, pause=0.05)
        if last is None:
            return
        if not self.running():
            raise RuntimeError(f"{self.name} exited with {self.process.returncode} before it was ready\n{self.log()[-3000:]}")
        raise RuntimeError(f"{self.name} not ready after {timeout} s (last: {last})\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 5) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` (the bench's 5 s: an overloaded service would otherwise drain
        its backlog of requests the bench has already given up on, for nothing). Its exit code."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_service(name: str, env: dict[str, str], workdir: Path, port: int | None = None, log_name: str | None = None) -> Service:
    """`passpro serve NAME --port P` as its own process (its own session), its output in workdir/`log_name`."""
    port = port or free_port()
    log_path = workdir / (log_name or f"{name}-{port}.log")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*passpro_command(), "serve", name, "--port", str(port)],
            env=env, cwd=workdir, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return Service(name, port, process, log_path)


@dataclass
class Services:
    """The bench's service processes, all stopped on exit."""

    workdir: Path
    running: list[Service] = field(default_factory=list)
    ports: Iterator[int] | None = None  # the ports to take in turn (a task's own range); free ones when None

    def start(self, name: str, env: dict[str, str]) -> Service:
        service = start_service(name, env, self.workdir, next(self.ports) if self.ports else None)
        self.running.append(service)
        return service

    def stop(self, service: Service) -> None:
        service.stop()
        if service in self.running:
            self.running.remove(service)

    def stop_all(self) -> None:
        for service in list(self.running):
            self.stop(service)


@dataclass
class Rebuild:
    """One rebuild (`passpro rebuild`'s work in its own process), and its catch-up from the start of the log."""

    seconds: float  # the whole process, start-up and swap included
    entries: int
    catch_up_events: int  # entries applied from the start of its reading to its last page
    catch_up_seconds: float
    peak_mb: float

    @property
    def events_per_s(self) -> float:
        return self.catch_up_events / self.catch_up_seconds if self.catch_up_seconds > 0 else 0.0


def run_rebuild(env: dict[str, str], cwd: Path, timeout: float) -> Rebuild:
    """Run `passpro rebuild`'s work (`python -m bench.rebuild_run`) to the end, sampling its memory.

    The catch-up rate is the process's own figure: entries applied from the moment it starts reading
    the log (migrations of the workspace done) to the last page, so the start-up and the swap are left
    out of it; they are in `seconds`, the process's wall time."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.rebuild_run"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    peak = [0.0]
    err_tail = bytearray()

    def sample() -> None:
        while process.poll() is None:
            now = peak_rss_mb(process.pid)
            if now is not None:
                peak[0] = max(peak[0], now)
            time.sleep(0.05)

    def keep_stderr() -> None:
        assert process.stderr is not None
        while chunk := process.stderr.read1(4096):
            err_tail.extend(chunk)
            del err_tail[:-8000]

    threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=keep_stderr, daemon=True)]
    for thread in threads:
        thread.start()
    assert process.stdout is not None
    out = process.stdout.read()  # the JSON line, at the end; stderr is read by its own thread
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    seconds = time.monotonic() - started
    for thread in threads:
        thread.join()
    if process.returncode != 0:
        raise RuntimeError(f"the rebuild exited {process.returncode}\n{out.decode()[-2000:]}\n{err_tail.decode(errors='replace')}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return Rebuild(seconds, result["entries"], result["catch_up_events"], result["catch_up_seconds"], peak[0])
