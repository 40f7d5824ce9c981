"""Running `passpro` as real, separate processes for the end-to-end tests (one service process: bench/processes.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_sync

from bench.processes import Service, passpro_command, start_service
from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registration", "evaluation", "scoring")


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
class Passpro:
    """The three services of one test, each its own process, sharing one log and one académie."""

    env: dict[str, str]
    workdir: Path
    services: dict[str, Service] = field(default_factory=dict)
    stopped: list[Service] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args)

    def token(self, role: str, user: str, uai: str | None = None) -> str:
        args = ["token", "--role", role, "--user", user]
        if uai:
            args += ["--uai", uai]
        lines = [line.strip() for line in self.cli(*args).stdout.splitlines() if line.strip()]
        assert lines, f"passpro token printed nothing for {role}"
        return lines[-1]

    def start(self, name: str, port: int | None = None) -> Service:
        service = start_service(name, self.env, self.workdir, port, log_name=f"{name}-{len(self.stopped)}.log")
        self.services[name] = service
        return service

    def wait_ready(self, name: str, timeout: float = 30) -> None:
        self.services[name].wait_ready(timeout)

    def stop(self, name: str) -> None:
        service = self.services.pop(name)
        service.stop(timeout=15)  # SIGTERM, as an orchestrator would, with its patience
        self.stopped.append(service)

    def stop_all(self) -> None:
        for name in list(self.services):
            self.stop(name)

    def logs(self) -> str:
        parts = []
        for service in [*self.stopped, *self.services.values()]:
            parts.append(f"===== {service.name} (port {service.port}, exit {service.process.returncode})\n{service.log()}")
        return "\n".join(parts)


@contextmanager
def running(system: Passpro, campaign: str, ports: dict[str, int] | None = None) -> Iterator[Passpro]:
    """The three services as processes on a migrated log with `campaign` open, ready; after: stopped, their logs
    printed (pytest shows them when a test failed) and the académie's keys deleted (on the cluster too)."""
    try:
        system.cli("migrate")
        system.cli("campaign", "open", campaign)
        for name in SERVICES:
            system.start(name, (ports or {}).get(name))
        for name in SERVICES:
            system.wait_ready(name)
        yield system
    finally:
        system.stop_all()
        print(system.logs())
        with log_client(system.env) as client:
            keys = list(client.scan_iter(match=f"passpro:{{{system.env['PASSPRO_ACADEMIE']}}}*", count=1000))
            if keys:
                client.delete(*keys)  # one hash tag: one slot, even on a cluster


def log_client(env: dict[str, str]) -> redis_sync.Redis | redis_sync.RedisCluster:
    """The log's server for these settings: the cluster (its SCAN goes to every primary) when
    PASSPRO_REDIS_CLUSTER_NODES names one (its first node is enough), else PASSPRO_REDIS_URL."""
    nodes = env.get("PASSPRO_REDIS_CLUSTER_NODES")
    if nodes:
        host, _, port = nodes.split(",")[0].strip().rpartition(":")
        return redis_sync.RedisCluster(host=host, port=int(port))
    return redis_sync.Redis.from_url(env["PASSPRO_REDIS_URL"])


TEST_MASTER_KEY = "dGhlLWUyZS10ZXN0cy1tYXN0ZXIta2V5LTMyLWJ5dGU="  # 32 bytes, base64: serve needs one


def base_env(redis_url: str, academie: str, secret: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPRO_")}
    env.update(
        PASSPRO_REDIS_URL=redis_url,
        PASSPRO_ACADEMIE=academie,
        PASSPRO_JWT_SECRET=secret,
        PASSPRO_MASTER_KEY=TEST_MASTER_KEY,
        PASSPRO_CAMPAIGN=CAMPAIGN,
        PASSPRO_DATA_DIR=str(workdir),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env
