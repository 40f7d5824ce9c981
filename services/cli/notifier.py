"""The notifier under `passpro up` (SPEC §7): started beside the three services on the port after theirs (or
any free port when that one is taken), its outbox page the place the e-mails wait with no PASSPRO_SMTP_URL.
Kept out of up.json's "services" (the three HTTP services) under its own "notifier" entry."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def bind_notifier(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.bind((host, 0))  # that port is someone else's: any free one, printed with the others
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def start_notifier(host: str, shown: str, port: int, log_file: Path | None, preexec) -> tuple[subprocess.Popen, str]:
    """The notifier as a child of `passpro up` serving on its socket; (the process, its URL)."""
    sock = bind_notifier(host, port)
    url = f"http://{shown}:{sock.getsockname()[1]}"
    output = open(log_file, "ab") if log_file else None  # noqa: SIM115 - closed below, the child keeps it
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "notifier", "--fd", str(sock.fileno()), "-v"],
            pass_fds=[sock.fileno()], stdout=output, stderr=subprocess.STDOUT if output else None,
            preexec_fn=preexec,  # noqa: PLW1509 - nothing else runs threads here
        )
    finally:
        if output:
            output.close()
        sock.close()
    return child, url
