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


def print_status() -> None:
    """`passpro status`'s lines for the notifier: its group's lag and pending entries per stream, what it sent,
    what waits for a retry, its last errors (nothing is made if it never ran)."""
    import asyncio

    from services.cli.common import existing_database, redis_client
    from services.cli.datadir import cli_settings
    from services.notifier.settings import NotifierSettings
    from services.notifier.worker import status
    from shared.runtime.db import make_engine

    settings = cli_settings(NotifierSettings)
    try:
        url = existing_database(settings, "notifier")
    except Exception:  # noqa: BLE001 - no database: it never ran here
        print("notifier : jamais démarré dans ce dossier.")
        return
    engine = make_engine(url, settings.database_schema or "notifier")

    async def read() -> dict:
        async with redis_client(settings) as redis:
            return await status(settings, redis, engine)

    try:
        seen = asyncio.run(read())
    finally:
        engine.dispose()
    print("notifier:")
    for stream in seen["streams"]:
        lag = "groupe absent" if stream["lag"] is None else f"en retard de {stream['lag']}, {stream['pending']} en cours"
        print(f"  {stream['stream']:<50} {lag}")
    print(f"  courriels envoyés : {seen['sent']}, en attente d'un nouvel essai : {seen['retrying']}, "
          f"rappels programmés : {seen['reminders']}")
    for error in seen["errors"]:
        print(f"  erreur du {error['at'][:19]} : {error['error']}")
