"""The notifier under `passpro up` (SPEC §7): started beside the three services on the port after theirs (or
any free port when that one is taken), its outbox page the place the e-mails wait with no PASSPRO_SMTP_URL.
Kept out of up.json's "services" (the three HTTP services) under its own "notifier" entry."""

from __future__ import annotations

import argparse
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
    if seen.get("failed_entries"):
        print(f"  entrées abandonnées après 5 échecs : {seen['failed_entries']} (passpro notifier failed, "
              "puis passpro notifier retry)")


def _notifier_database():
    """The notifier's settings and database engine (None when it never ran here)."""
    from services.cli.common import existing_database
    from services.cli.datadir import cli_settings
    from services.notifier.process import migrate
    from services.notifier.settings import NotifierSettings
    from shared.runtime.db import make_engine

    settings = cli_settings(NotifierSettings)
    try:
        url = existing_database(settings, "notifier")
    except Exception:  # noqa: BLE001 - no database: it never ran here
        return settings, None
    migrate(settings)  # a database made before failed_entries existed
    return settings, make_engine(url, settings.database_schema or "notifier")


def notifier_failed(args: argparse.Namespace) -> int:
    """The log entries the notifier gave up on (acknowledged after 5 failures), with their last error."""
    from services.notifier import ledger
    from shared.contracts.streams import StreamKeys

    settings, engine = _notifier_database()
    if engine is None:
        print("notifier : jamais démarré dans ce dossier.")
        return 0
    try:
        with engine.connect() as conn:
            rows = ledger.failed(conn, limit=1000)
    finally:
        engine.dispose()
    keys = StreamKeys(settings.academie)
    if not rows:
        print("Aucune entrée abandonnée par le notifier.")
        return 0
    for r in rows:
        wanted = " (nouvel essai demandé)" if r.retry else ""
        print(f"{keys.stream_name(r.stream)} {r.entry_id}  {r.attempts} échecs, le dernier le {r.failed_at[:19]} : "
              f"{r.error}{wanted}")
    print(f"{len(rows)} entrée(s). Nouvel essai : passpro notifier retry FLUX ENTRÉE, ou --all.")
    return 0


def notifier_retry(args: argparse.Namespace) -> int:
    """Asks the running notifier to handle given-up entries again (at its next timer tick)."""
    from services.cli.common import fail
    from services.notifier import ledger
    from shared.contracts.streams import StreamKeys

    if args.all == bool(args.stream):
        return fail("notifier retry", "donnez soit un flux et une entrée (passpro notifier failed), soit --all.")
    if args.stream and not args.entry_id:
        return fail("notifier retry", "donnez l'identifiant de l'entrée après le flux.")
    settings, engine = _notifier_database()
    if engine is None:
        return fail("notifier retry", "le notifier n'a jamais démarré dans ce dossier.")
    stream = f"{StreamKeys(settings.academie).prefix}:{args.stream}" if args.stream else None
    try:
        with engine.begin() as conn:
            marked = ledger.request_retry(conn, stream, args.entry_id)
    finally:
        engine.dispose()
    if not marked:
        return fail("notifier retry", f"aucune entrée abandonnée {args.stream} {args.entry_id}.", 1)
    print(f"{marked} entrée(s) seront traitées à nouveau par le notifier à son prochain passage.")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    notifier = sub.add_parser("notifier", help="the notifier's given-up entries").add_subparsers(
        dest="action", required=True)
    p = notifier.add_parser("failed", help="the log entries the notifier gave up on after 5 failures")
    p.set_defaults(func=notifier_failed)
    p = notifier.add_parser("retry", help="have the notifier handle given-up entries again")
    p.add_argument("stream", nargs="?", help="the stream's short name, e.g. 2027:registration")
    p.add_argument("entry_id", nargs="?")
    p.add_argument("--all", action="store_true", help="every given-up entry")
    p.set_defaults(func=notifier_retry)
