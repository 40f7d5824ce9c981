"""`passpro serve NAME` and `passpro migrate`."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from services.cli.common import SERVICES, app_factory, env_settings, migrate_all

if TYPE_CHECKING:
    from shared.runtime.settings import ServiceSettings

# A worker's index among `passpro serve --workers N`'s processes (0 when serving alone): the app runs its
# background tasks in worker 0 only (shared/runtime/http/app.py reads the same variable); the view's consumer is
# one among them by its lease.
WORKER_INDEX_ENV = "PASSPRO_WORKER_INDEX"


def reuse_port_socket(host: str, port: int, listen: bool = True) -> socket.socket:
    """A socket on host:port that other processes may also bind (SO_REUSEPORT): the kernel spreads the
    connections over the workers' listening sockets (one bound without listening is given none)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(2048)
    return sock


def serve_workers(args: argparse.Namespace) -> int:
    """`--workers N`: N processes of `passpro serve NAME`, each its own event loop, on one port — each binds it
    with SO_REUSEPORT, or all accept on the socket `passpro up` passed (--fd). Worker 0 runs the background
    tasks; every worker starts the view's consumer, and the view's lease lets one of them apply the log while
    the others serve reads at the positions it stores. SIGTERM or SIGINT stops them all; one worker ending
    stops the others, and its exit code is this command's."""
    port = args.port or SERVICES.get(args.name, 0)
    guard = None
    if args.fd is None:  # bound here first: a port already taken is said once, before any worker starts
        guard = reuse_port_socket(args.host, port, listen=False)
        port = guard.getsockname()[1]  # --port 0: the one the system chose, for every worker
    command = [sys.executable, "-m", "services.cli", "serve", args.name]
    command += ["--fd", str(args.fd)] if args.fd is not None else ["--host", args.host, "--port", str(port),
                                                                   "--reuse-port"]
    workers: list[subprocess.Popen] = []

    def stop(*_: object) -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)  # before any worker starts: none is left behind
    signal.signal(signal.SIGINT, stop)
    for i in range(args.workers):
        workers.append(subprocess.Popen(command, env={**os.environ, WORKER_INDEX_ENV: str(i)},
                                        pass_fds=(args.fd,) if args.fd is not None else ()))
    print(f"passpro serve {args.name}: {args.workers} workers (pids {', '.join(str(w.pid) for w in workers)})",
          flush=True)

    try:
        code = None
        while code is None:
            code = next((w.returncode for w in workers if w.poll() is not None), None)
            time.sleep(0.2)
        stop()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        return 0 if code in (0, -signal.SIGTERM) else (code if code > 0 else 1)
    finally:
        if guard is not None:
            guard.close()


# How long an idle keep-alive connection stays open (uvicorn's default, said here). A client that keeps
# connections must drop its idle ones sooner, or it may send a request on one the service is closing at that
# instant and get no answer: nginx's upstream `keepalive_timeout` is 4 s in deploy/nginx-ha.conf.
KEEP_ALIVE_SECONDS = 5


def run_uvicorn(app: object, settings: ServiceSettings, **where: object) -> None:
    """uvicorn serving `app` at `where` (host and port, or fd). X-Forwarded-For and X-Forwarded-Proto are
    believed only from PASSPRO_TRUSTED_PROXIES: behind a proxy the browser's address is what the sign-in
    limits count, and one a client could set itself would let it escape them."""
    import uvicorn

    uvicorn.run(app, **where, forwarded_allow_ips=settings.forwarded_allow_ips, log_level="info", access_log=False,
                timeout_keep_alive=KEEP_ALIVE_SECONDS)


def refuse_uvicorns_own_proxy_setting() -> None:
    """uvicorn's FORWARDED_ALLOW_IPS is not read (PASSPRO_TRUSTED_PROXIES is): said rather than ignored."""
    if "FORWARDED_ALLOW_IPS" in os.environ:
        raise SystemExit("FORWARDED_ALLOW_IPS is not read by passpro serve: set PASSPRO_TRUSTED_PROXIES to the "
                         "reverse proxies' addresses instead")


def serve(args: argparse.Namespace) -> int:
    refuse_uvicorns_own_proxy_setting()
    if args.name == "notifier":
        return serve_notifier(args)
    settings = env_settings(args.name)  # a service is configured by its environment only
    settings.require_secret()
    settings.require_master_key()
    settings.require_sign_in_setup()  # production: the académie's provider, no token page nor demo users
    if args.workers > 1:  # checked once above, then each worker checks its own
        return serve_workers(args)
    create_app, _ = app_factory(args.name)
    if args.fd is not None:  # a socket `passpro up` bound (and so checked) before starting anything
        run_uvicorn(create_app(settings), settings, fd=args.fd)
        return 0
    port = args.port or SERVICES[args.name]
    if args.reuse_port:  # one of `--workers N`: its own socket on the shared port
        sock = reuse_port_socket(args.host, port)
        run_uvicorn(create_app(settings), settings, fd=sock.fileno())
        return 0
    run_uvicorn(create_app(settings), settings, host=args.host, port=port)
    return 0


def serve_notifier(args: argparse.Namespace) -> int:
    """The notifier (SPEC §7): reads the log in its consumer group and sends the e-mails; its pages are the
    local outbox (no PASSPRO_SMTP_URL) and /status."""
    from services.notifier.app import create_app
    from services.notifier.settings import NOTIFIER_PORT, NotifierSettings

    settings = NotifierSettings()
    settings.require_master_key()  # the référents' addresses are sealed in the log
    settings.require_smtp_in_production()
    if args.fd is not None:
        run_uvicorn(create_app(settings), settings, fd=args.fd)
    else:
        run_uvicorn(create_app(settings), settings, host=args.host, port=args.port or NOTIFIER_PORT)
    return 0


def migrate(_: argparse.Namespace) -> int:
    migrate_all()
    print("Migrations appliquées : registration, evaluation, scoring.")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="one service, configured by environment")
    p.add_argument("name", choices=[*SERVICES, "notifier"])
    p.add_argument("--port", type=int)
    p.add_argument("--host", default=os.environ.get("PASSPRO_HOST", "127.0.0.1"))
    p.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # passpro up: serve on this listening socket
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the one port (default 1)")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a worker of --workers N
    p.set_defaults(func=serve)
    sub.add_parser("migrate", help="apply every service's database migrations").set_defaults(func=migrate)
