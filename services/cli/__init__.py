"""The `passpro` command (SPEC §5): the one place that composes the services.

Each module registers its subcommands; `main` parses and runs one, and is the one place that turns a
command's failure into one French line (no traceback unless `-v`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from services.cli import access, admin, audit, bench, campaign, dlq, docs, forget, notifier, rebuild, serve, status, up
from services.cli.common import CliError, make_token, open_campaign

__all__ = ["main", "parser", "make_token", "open_campaign"]

COMMAND_MODULES = [up, serve, admin, campaign, status, docs, rebuild, audit, access, bench, dlq, forget, notifier]


def _leaves(p: argparse.ArgumentParser):
    """Every parser that runs a command (the subcommands of the subcommands too)."""
    groups = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield p
    for group in groups:
        for child in dict.fromkeys(group.choices.values()):  # an alias would list one parser twice
            yield from _leaves(child)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="passpro", description="Passpro : dispositif d'accès à la voie professionnelle.")
    p.add_argument("--data-dir", metavar="DIR", help="the data dir of `passpro up` (default PASSPRO_DATA_DIR, or ./.passpro)")
    p.add_argument("-v", "--verbose", action="store_true", help="the libraries' logs, and a failure's traceback")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    # The same two options after the subcommand (`passpro status --data-dir DIR`); SUPPRESS keeps the
    # value given before it when they are not repeated.
    for leaf in _leaves(p):
        if "--data-dir" not in leaf._option_string_actions:
            leaf.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                              help="the data dir of `passpro up` (default PASSPRO_DATA_DIR, or ./.passpro)")
        if "--verbose" not in leaf._option_string_actions:
            leaf.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                              help="the libraries' logs, and a failure's traceback")
    return p


def _name(args: argparse.Namespace) -> str:
    return " ".join(str(part) for part in (args.command, getattr(args, "action", None)) if part)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.data_dir:
        os.environ["PASSPRO_DATA_DIR"] = args.data_dir  # what every settings object reads (datadir.py)
    try:
        return args.func(args) or 0
    except CliError as exc:
        print(f"passpro {_name(args)} : {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `passpro status | head`: the reader has gone, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the one place a failure becomes one line
        print(f"passpro {_name(args)} : {_french(exc)}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return 2


def _french(exc: Exception) -> str:
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    first = (str(exc).strip().splitlines() or [""])[0][:200]
    if isinstance(exc, RedisError):
        return f"erreur du journal ({type(exc).__name__} : {first}) ; -v pour le détail."
    if isinstance(exc, SQLAlchemyError):
        return f"base de données inaccessible ou non migrée (passpro migrate ?) ({type(exc).__name__}) ; -v pour le détail."
    if isinstance(exc, OSError):
        return f"erreur système ({exc.strerror or first}{f' : {exc.filename}' if exc.filename else ''})."
    return f"échec inattendu ({type(exc).__name__} : {first}) ; -v pour le détail."


if __name__ == "__main__":
    sys.exit(main())
