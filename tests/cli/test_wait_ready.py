"""The one readiness wait of `passpro up`, the bench and the e2e tests: ready, or why not."""

from __future__ import annotations

import subprocess
import sys

from bench.processes import free_port
from services.cli.up import wait_ready


def test_a_child_that_exits_before_it_is_ready_is_told_at_once_with_the_last_answer():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    port = free_port()  # nothing listens on it
    last = wait_ready(f"http://127.0.0.1:{port}", child, timeout=60)
    assert last is not None and child.poll() == 0


def test_a_child_whose_readyz_answers_200_is_ready():
    port = free_port()
    script = (
        "import http.server as h\n"
        "class R(h.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/readyz' else 404); self.end_headers()\n"
        f"h.HTTPServer(('127.0.0.1', {port}), R).serve_forever()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        assert wait_ready(f"http://127.0.0.1:{port}", child, timeout=60, pause=0.05) is None
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
