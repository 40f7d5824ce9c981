"""The browser's address behind a reverse proxy (PASSPRO_TRUSTED_PROXIES): a real `passpro serve` behind Debian's
nginx (tests/replicas/nginx.py, forwarding as deploy/nginx-ha.conf does), nginx connecting from 127.0.0.2, the
one address the process trusts. The académie's sign-in starts are counted per address (shared/runtime/tries.py,
`sign_in_starts`): the counts kept say which address the process took for each request. The provider is out of
reach, so each start is counted and answers 503.

Ports: 9710-9711."""

from __future__ import annotations

import secrets
import sqlite3
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from nginx import behind_nginx  # noqa: E402
from passpro_processes import base_env, run_cli  # noqa: E402
from shared.runtime.keys.crypto import MasterKey, parse_master_key  # noqa: E402
from shared.runtime.tries import ADDRESS_KEY_INFO, address_key  # noqa: E402

NGINX_PORT, PROCESS_PORT = 9710, 9711
NGINX_ADDRESS = "127.0.0.2"  # nginx's own peer address (proxy_bind), trusted; the clients use others


def start_from(address: str, url: str, forwarded_for: str | None = None) -> None:
    """One sign-in start sent from the loopback address `address`."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30) as client:
        answer = client.get(f"{url}/auth/login", headers=headers)
    assert answer.status_code == 503, answer.text  # counted, then the provider out of reach


def counted(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "registration.sqlite3") as db:
        return dict(db.execute("SELECT address, failures FROM sign_in_starts"))


def test_the_sign_in_starts_count_the_address_a_trusted_proxy_forwards_and_the_peers_own_otherwise(
    redis_url: str, academie: str, tmp_path: Path
) -> None:
    env = base_env(redis_url, academie, secrets.token_hex(32), tmp_path) | {
        "PASSPRO_TRUSTED_PROXIES": NGINX_ADDRESS,
        "PASSPRO_OIDC_ISSUER": "http://127.0.0.1:9799",  # nothing listens there
        "PASSPRO_OIDC_CLIENT_ID": "passpro",
    }
    run_cli(env, "migrate")
    with behind_nginx(env, tmp_path, {"registration": [PROCESS_PORT]}, {"registration": NGINX_PORT},
                      proxy_from=NGINX_ADDRESS) as (_, nginx):
        direct = f"http://127.0.0.1:{PROCESS_PORT}"
        # Through nginx: the browser's address, not nginx's — even when the browser sends an X-Forwarded-For of
        # its own, to which nginx appends the address it sees.
        start_from("127.0.0.5", nginx.url("registration"))
        start_from("127.0.0.6", nginx.url("registration"), forwarded_for="198.51.100.1")
        # From the trusted address itself: the address it forwards.
        start_from(NGINX_ADDRESS, direct, forwarded_for="203.0.113.7")
        # From anyone else (loopback included, trusted by default but not named here): the header is ignored.
        start_from("127.0.0.3", direct, forwarded_for="203.0.113.8")
        start_from("127.0.0.1", direct, forwarded_for="203.0.113.9")
        secret = MasterKey(parse_master_key(env["PASSPRO_MASTER_KEY"])).derive(ADDRESS_KEY_INFO, b"")
        assert counted(tmp_path) == {
            address_key(secret, address): 1
            for address in ("127.0.0.5", "127.0.0.6", "203.0.113.7", "127.0.0.3", "127.0.0.1")
        }
