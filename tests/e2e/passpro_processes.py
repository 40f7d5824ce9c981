"""Running `passpro` as real, separate processes for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registration", "evaluation", "scoring")


def passpro_command() -> list[str]:
    """The installed `passpro` command, or the same entry point run from the repository."""
    installed = shutil.which("passpro")
    if installed:
        return [installed]
    return [sys.executable, "-c", "import sys; from services.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one `passpro` command to completion; fail with its output if it fails."""
    done = subprocess.run(
        [*passpro_command(), *args], env=env, cwd=env.get("PASSPRO_DATA_DIR"), capture_output=True, text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"passpro {' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return done


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, as an orchestrator would; SIGKILL if it does not stop in time."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@dataclass
class Passpro:
    """The three services of one test, each its own process, sharing one log and one académie."""

    env: dict[str, str]
    workdir: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    stopped: list[ServiceProcess] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args)

    def token(self, role: str, user: str, uai: str | None = None) -> str:
        args = ["token", "--role", role, "--user", user]
        if uai:
            args += ["--uai", uai]
        lines = [line.strip() for line in self.cli(*args).stdout.splitlines() if line.strip()]
        assert lines, f"passpro token printed nothing for {role}"
        return lines[-1]

    def start(self, name: str, port: int | None = None) -> ServiceProcess:
        port = port or free_port()
        log_path = self.workdir / f"{name}-{len(self.stopped)}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [*passpro_command(), "serve", name, "--port", str(port)],
                env=self.env,
                cwd=self.workdir,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = ServiceProcess(name, port, process, log_path)
        self.services[name] = service
        return service

    def wait_ready(self, name: str, timeout: float = 30) -> None:
        service = self.services[name]
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not service.running():
                raise AssertionError(f"{name} exited with {service.process.returncode} before it was ready\n{service.log()}")
            try:
                answer = httpx.get(f"{service.url}/readyz", timeout=2)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise AssertionError(f"{name} not ready after {timeout} s (last: {last})\n{service.log()}")

    def stop(self, name: str) -> None:
        service = self.services.pop(name)
        service.stop()
        self.stopped.append(service)

    def stop_all(self) -> None:
        for name in list(self.services):
            self.stop(name)

    def logs(self) -> str:
        parts = []
        for service in [*self.stopped, *self.services.values()]:
            parts.append(f"===== {service.name} (port {service.port}, exit {service.process.returncode})\n{service.log()}")
        return "\n".join(parts)


TEST_MASTER_KEY = "dGhlLWUyZS10ZXN0cy1tYXN0ZXIta2V5LTMyLWJ5dGU="  # 32 bytes, base64: serve needs one


def base_env(redis_url: str, academie: str, secret: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPRO_")}
    env.update(
        PASSPRO_REDIS_URL=redis_url,
        PASSPRO_ACADEMIE=academie,
        PASSPRO_JWT_SECRET=secret,
        PASSPRO_MASTER_KEY=TEST_MASTER_KEY,
        PASSPRO_CAMPAIGN="2027",
        PASSPRO_DATA_DIR=str(workdir),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env
