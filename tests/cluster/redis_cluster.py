"""A Redis Cluster on loopback for the tests (SPEC §9): three primaries, each with one replica (or more),
Debian's redis-server started by the test in its own folder and stopped by it."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_sync

FIRST_PORT = 19601  # these tests' ports: 19601-19606, and 19611-19619 for the failover's


@dataclass
class RedisClusterProcesses:
    folder: Path
    ports: list[int]
    replicas: int = 1
    node_timeout_ms: int = 5000
    full_coverage: bool = True  # cluster-require-full-coverage: no lets the other shards serve when one is lost
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def nodes(self) -> str:
        """PASSPRO_REDIS_CLUSTER_NODES: one node is enough, the client finds the others."""
        return f"127.0.0.1:{self.ports[0]}"

    def client(self, port: int) -> redis_sync.Redis:
        return redis_sync.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5)

    def start(self) -> None:
        for port in self.ports:
            home = self.folder / str(port)
            home.mkdir(parents=True)
            self.processes.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(home / "nodes.conf"), "--dir", str(home), "--appendonly", "no",
                 "--save", "", "--cluster-node-timeout", str(self.node_timeout_ms),
                 "--cluster-require-full-coverage", "yes" if self.full_coverage else "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for port in self.ports:
            self._until(lambda port=port: self.client(port).ping(), f"redis-server on {port}")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        for port in self.ports:
            self._until(lambda port=port: self.client(port).cluster("info")["cluster_state"] == "ok",
                        f"cluster_state:ok on {port}")
        # Each replica attached to its primary and its first sync done (`online`) before the test writes:
        # WAIT 1 counts on it.
        self._until(lambda: all(self.replicas_online(p) == self.replicas for p in self.primaries()),
                    "the replicas online with each primary")

    def replicas_online(self, primary: int) -> int:
        info = self.client(primary).info("replication")
        return sum(1 for n in range(info.get("connected_slaves", 0)) if info[f"slave{n}"]["state"] == "online")

    def alive(self) -> int:
        """The port of a node still running (to ask about the cluster)."""
        return next(port for port, process in zip(self.ports, self.processes) if process.poll() is None)

    def primaries(self) -> list[int]:
        shards = self.client(self.alive()).cluster("slots")
        return sorted(int(shard[2][1]) for shard in shards)

    def owner(self, slot: int) -> int:
        """The port of the primary owning `slot`."""
        for start, end, primary, *_ in self.client(self.alive()).cluster("slots"):
            if int(start) <= slot <= int(end):
                return int(primary[1])
        raise LookupError(slot)

    @staticmethod
    def _until(check, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{what} not reached in {timeout} s (last error: {last})")

    def kill(self, port: int) -> None:
        """SIGKILL the node on `port`, as a lost machine."""
        process = self.processes[self.ports.index(port)]
        process.kill()
        process.wait()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster(
    folder: Path, first_port: int = FIRST_PORT, replicas: int = 1, node_timeout_ms: int = 5000,
    full_coverage: bool = True,
) -> RedisClusterProcesses:
    ports = list(range(first_port, first_port + 3 * (1 + replicas)))
    cluster = RedisClusterProcesses(folder, ports, replicas, node_timeout_ms, full_coverage)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
