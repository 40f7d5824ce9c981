"""Debian's nginx on loopback in front of several processes of each service, for the replica and failover
tests: a configuration generated like deploy/nginx-ha.conf (one upstream per service, the next process on a
connection error or a 502/503), run in the foreground as the test's own process, stopped by its pid;
`behind_nginx` starts the services' processes (`passpro serve`, sharing their database) and nginx before
them, and `lease_holders` reads from PostgreSQL which process applies each view."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from bench.processes import Service, start_service
from shared.runtime.db import make_engine
from shared.runtime.projection.lease import CLASSID, _objid

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def config(upstreams: dict[str, list[int]], listen: dict[str, int], workdir: Path, proxy_from: str | None = None) -> str:
    """`proxy_from`: the loopback address nginx connects to the processes from (proxy_bind), when a test needs
    nginx to be a peer of its own, apart from the clients on 127.0.0.1."""
    blocks = []
    for name, ports in upstreams.items():
        servers = " ".join(f"server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;" for port in ports)
        blocks.append(f"upstream {name} {{ {servers} keepalive 8; keepalive_timeout 4s; }}")  # as deploy/nginx-ha.conf
        blocks.append(f"server {{ listen 127.0.0.1:{listen[name]}; location / {{ proxy_pass http://{name}; }} }}")
    body = "\n    ".join(blocks)
    return f"""daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    # Which process served each request ($upstream_addr: two when the first could not take it).
    log_format upstream '$remote_addr "$request" $status $upstream_addr $upstream_status';
    access_log {workdir}/nginx-access.log upstream;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    proxy_next_upstream error timeout http_502 http_503;
    proxy_next_upstream_tries 2;
    proxy_connect_timeout 2s;
    proxy_read_timeout 30s;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    {f"proxy_bind {proxy_from};" if proxy_from else ""}
    {body}
}}
"""


class Nginx:
    def __init__(self, upstreams: dict[str, list[int]], listen: dict[str, int], workdir: Path,
                 proxy_from: str | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.listen = listen
        conf = workdir / "nginx.conf"
        conf.write_text(config(upstreams, listen, workdir, proxy_from))
        check = subprocess.run([NGINX, "-t", "-q", "-p", str(workdir), "-c", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(conf)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        for port in listen.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    assert self.process.poll() is None, self.process.stderr.read().decode()
                    assert time.monotonic() < deadline, f"nginx does not listen on {port}"
                    time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.listen[name]}"

    def upstreams_used(self) -> str:
        return (self.workdir / "nginx-access.log").read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: its worker goes with it
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


VIEWS = {"registration": "registration-students", "evaluation": "evaluation-interviews", "scoring": "scoring-bonuses"}


class Replicas:
    """Several `passpro serve` processes of each service, on the ports given, sharing `env` (so one database)."""

    def __init__(self, env: dict[str, str], workdir: Path, ports: dict[str, list[int]]) -> None:
        self.env, self.workdir, self.ports = env, workdir, ports
        self.processes: dict[str, Service] = {}  # "scoring-2" -> its process

    def start(self, name: str, i: int) -> None:
        # Each process names its PostgreSQL sessions, so the lease's holder is read from pg_stat_activity.
        env = self.env | {"PGAPPNAME": f"{name}-{i}"}
        port = self.ports[name][i - 1]
        self.processes[f"{name}-{i}"] = start_service(name, env, self.workdir, port, log_name=f"{name}-{i}-{time.time_ns()}.log")

    def stop_all(self) -> None:
        for service in self.processes.values():
            service.stop(timeout=15)

    def logs(self) -> str:
        return "\n".join(f"===== {n}\n{s.log()}" for n, s in self.processes.items())


@contextmanager
def behind_nginx(
    env: dict[str, str], workdir: Path, ports: dict[str, list[int]], listen: dict[str, int],
    proxy_from: str | None = None,
) -> Iterator[tuple[Replicas, Nginx]]:
    """The processes of `ports` started and ready, nginx in front of them on `listen` (connecting to them from
    `proxy_from`, if given); after: all stopped and the processes' logs printed (pytest shows them when the test
    failed)."""
    replicas = Replicas(env, workdir, ports)
    nginx = None
    try:
        for name, its_ports in ports.items():
            for i in range(1, len(its_ports) + 1):
                replicas.start(name, i)
        for service in replicas.processes.values():
            service.wait_ready(60)
        nginx = Nginx(ports, listen, workdir / "nginx", proxy_from)
        yield replicas, nginx
    finally:
        if nginx is not None:
            nginx.stop()
        replicas.stop_all()
        print(replicas.logs()[-20000:])


def lease_holders(database_url: str) -> dict[str, list[str]]:
    """For each service's view, the names of the processes holding its lease (from pg_locks)."""
    found = {}
    for name, view in VIEWS.items():
        engine = make_engine(database_url, name)
        try:
            with engine.connect() as conn:
                objid = _objid(name, view)
                found[name] = list(conn.execute(text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.classid::bigint = :c AND l.objid::bigint = :o"
                    " AND l.objsubid = 2 AND l.granted"
                    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                    {"c": CLASSID, "o": objid & 0xFFFFFFFF}).scalars())
        finally:
            engine.dispose()
    return found
