"""The `passpro` command (SPEC §5): the one place that composes the services.

Each module registers its subcommands; `main` parses and runs one.
"""

from __future__ import annotations

import argparse
import logging
import sys

from services.cli import access, admin, audit, bench, campaign, dlq, docs, forget, rebuild, serve, status, up
from services.cli.common import make_token, open_campaign

__all__ = ["main", "parser", "make_token", "open_campaign"]

COMMAND_MODULES = [up, serve, admin, campaign, status, docs, rebuild, audit, access, bench, dlq, forget]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="passpro", description="Passpro : dispositif d'accès à la voie professionnelle.")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
