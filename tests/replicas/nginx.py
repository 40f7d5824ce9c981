"""Debian's nginx on loopback in front of several processes of each service, for the replica tests: a
configuration generated like deploy/nginx-ha.conf (one upstream per service, the next process on a
connection error or a 502/503), run in the foreground as the test's own process, stopped by its pid."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def config(upstreams: dict[str, list[int]], listen: dict[str, int], workdir: Path) -> str:
    blocks = []
    for name, ports in upstreams.items():
        servers = " ".join(f"server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;" for port in ports)
        blocks.append(f"upstream {name} {{ {servers} keepalive 8; }}")
        blocks.append(f"server {{ listen 127.0.0.1:{listen[name]}; location / {{ proxy_pass http://{name}; }} }}")
    body = "\n    ".join(blocks)
    return f"""daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/nginx-access.log;
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
    {body}
}}
"""


class Nginx:
    def __init__(self, upstreams: dict[str, list[int]], listen: dict[str, int], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.listen = listen
        conf = workdir / "nginx.conf"
        conf.write_text(config(upstreams, listen, workdir))
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
