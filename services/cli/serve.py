"""`passpro serve NAME` and `passpro migrate`."""

from __future__ import annotations

import argparse
import os

from services.cli.common import SERVICES, app_factory, env_settings, migrate_all


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.name == "notifier":
        return serve_notifier(args)
    settings = env_settings(args.name)  # a service is configured by its environment only
    settings.require_secret()
    settings.require_master_key()
    settings.require_sign_in_setup()  # production: the académie's provider, no token page nor demo users
    create_app, _ = app_factory(args.name)
    if args.fd is not None:  # a socket `passpro up` bound (and so checked) before starting anything
        uvicorn.run(create_app(settings), fd=args.fd, log_level="info", access_log=False)
        return 0
    port = args.port or SERVICES[args.name]
    uvicorn.run(create_app(settings), host=args.host, port=port, log_level="info", access_log=False)
    return 0


def serve_notifier(args: argparse.Namespace) -> int:
    """The notifier (SPEC §7): reads the log in its consumer group and sends the e-mails; its pages are the
    local outbox (no PASSPRO_SMTP_URL) and /status."""
    import uvicorn

    from services.notifier.app import create_app
    from services.notifier.settings import NOTIFIER_PORT, NotifierSettings

    settings = NotifierSettings()
    settings.require_master_key()  # the référents' addresses are sealed in the log
    settings.require_smtp_in_production()
    if args.fd is not None:
        uvicorn.run(create_app(settings), fd=args.fd, log_level="info", access_log=False)
    else:
        uvicorn.run(create_app(settings), host=args.host, port=args.port or NOTIFIER_PORT, log_level="info",
                    access_log=False)
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
    p.set_defaults(func=serve)
    sub.add_parser("migrate", help="apply every service's database migrations").set_defaults(func=migrate)
