"""The services under test as separate processes (`passpro serve NAME --port P`), and `passpro rebuild` as a command."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


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

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout} s\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM, then SIGKILL after `timeout`: an overloaded service would otherwise drain its backlog
        of requests the bench has already given up on, for nothing."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@dataclass
class Services:
    """The bench's service processes, all stopped on exit."""

    workdir: Path
    running: list[Service] = field(default_factory=list)

    def start(self, name: str, env: dict[str, str]) -> Service:
        port = free_port()
        log_path = self.workdir / f"{name}-{port}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [*passpro_command(), "serve", name, "--port", str(port)],
                env=env, cwd=self.workdir, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        service = Service(name, port, process, log_path)
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
    """One `passpro rebuild`: the command as a person runs it, and its catch-up from the start of the log."""

    seconds: float  # the whole command, start-up and swap included
    entries: int
    catch_up_events: int  # entries applied between the first and the last page it reported
    catch_up_seconds: float
    peak_mb: float

    @property
    def events_per_s(self) -> float:
        return self.catch_up_events / self.catch_up_seconds if self.catch_up_seconds > 0 else 0.0


_PROGRESS = re.compile(r"(\d+)/(\d+) entrées")


class ProgressReader:
    """Turns `passpro rebuild`'s progress bar into (time, entries done), each update timed when it arrives.

    The bar writes "\\r" and then one update per page, flushed at once; an update cut between two
    reads is completed by the next read, and the rest of an update already counted is skipped."""

    def __init__(self) -> None:
        self.partial = b""
        self.skipping = False

    def feed(self, chunk: bytes, at: float) -> list[tuple[float, int]]:
        if self.skipping:
            cut = chunk.find(b"\r")
            if cut < 0:
                return []
            chunk, self.skipping = chunk[cut:], False
        *complete, last = (self.partial + chunk).split(b"\r")
        pages = [(at, done) for done in map(self._done, complete) if done]
        if done := self._done(last):
            pages.append((at, done))
            self.partial, self.skipping = b"", True
        else:
            self.partial = last
        return pages

    @staticmethod
    def _done(update: bytes) -> int:
        found = _PROGRESS.search(update.decode(errors="replace"))
        return int(found.group(1)) if found else 0  # the bar starts at 0, before the first page


def run_rebuild(env: dict[str, str], cwd: Path, timeout: float) -> Rebuild:
    """Run `passpro rebuild` to the end, timing its catch-up from its progress lines and sampling its memory.

    The command reports its progress after every page it applies (`done/total entrées`); the catch-up
    rate counts from the first page reported to the last, so the start-up, the migrations of the
    workspace and the swap are left out of it (they are in `seconds`)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*passpro_command(), "rebuild"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    peak = [0.0]
    pages: list[tuple[float, int]] = []
    err_tail = bytearray()

    def sample() -> None:
        while process.poll() is None:
            now = peak_rss_mb(process.pid)
            if now is not None:
                peak[0] = max(peak[0], now)
            time.sleep(0.05)

    def read_progress() -> None:
        progress = ProgressReader()
        assert process.stderr is not None
        while chunk := process.stderr.read1(4096):
            err_tail.extend(chunk)
            del err_tail[:-8000]
            pages.extend(progress.feed(chunk, time.monotonic()))

    threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=read_progress, daemon=True)]
    for thread in threads:
        thread.start()
    assert process.stdout is not None
    out = process.stdout.read()  # the summary line, at the end; stderr is read by its own thread
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    seconds = time.monotonic() - started
    for thread in threads:
        thread.join()
    if process.returncode != 0:
        raise RuntimeError(f"passpro rebuild exited {process.returncode}\n{out.decode()[-2000:]}\n{err_tail.decode(errors='replace')}")
    found = re.search(r"(\d+) entrées relues", out.decode())
    (first_at, first_done), (last_at, last_done) = (pages[0], pages[-1]) if pages else ((0.0, 0), (0.0, 0))
    return Rebuild(seconds, int(found.group(1)) if found else 0, last_done - first_done, last_at - first_at, peak[0])
