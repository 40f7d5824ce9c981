"""Sign-ins started on /auth/login from one browser address are counted (shared/runtime/tries.py, the count of
wrong access codes and of EduConnect's starts): past LOGIN_STARTS without a verified answer, a French 429 page
for the lock's time, no flow sealed; a verified answer clears the count; another address is not affected. The
address is kept as an HMAC under a key derived from the master key; the service's task deletes a count an hour
after its last start, or when its lock ends, without waiting for another start."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from academie_provider import TEST_BASE, AcademieProvider
from sqlalchemy import select

from sign_in_world import SESSION_COOKIES, ProviderPasspro, sign_in, start_sign_in
from services_world import _service
from test_oidc_pages import text_of
from shared.runtime.keys.crypto import MasterKey, parse_master_key
from services.registration import access_codes
from services.registration.views import sign_in_failures
from shared.runtime import tries
from shared.runtime.tries import ADDRESS_KEY_INFO, LOCK_SECONDS, address_key, sign_in_starts
from shared.web.oidc import LOGIN_STARTS

FLOW_COOKIE = "passpro_registration_oidc"
# A day ahead of the real clock, on any date: a new process's task deleting old tries runs once at its start by
# the real clock (before the test sets its own), and must never find T0's tries an hour old.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)


@pytest.fixture
def passpro(redis_url: str, academie: str, tmp_path: Path, academie_provider: AcademieProvider) -> Iterator[ProviderPasspro]:
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        yield ProviderPasspro(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client,
                              provider=academie_provider)


class FromAddress:
    """The app seen from the browser address a request's `x-test-address` names (else the TestClient's own), as
    the server would see two browsers."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app, self.state = app, app.state

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        address = dict(scope.get("headers") or []).get(b"x-test-address")
        if address:
            scope = {**scope, "client": (address.decode(), 50000)}
        await self.app(scope, receive, send)


@contextlib.contextmanager
def registration_process(passpro: ProviderPasspro) -> Iterator[TestClient]:
    """One process of registration (several share its database and master key), its clock at T0."""
    _, _, create_app = _service("registration")
    app = create_app(passpro.settings("registration"))
    with TestClient(FromAddress(app), base_url=TEST_BASE, raise_server_exceptions=False) as client:
        app.state.runtime.clock = lambda: T0
        yield client


@pytest.fixture
def registration(passpro: ProviderPasspro) -> Iterator[TestClient]:
    passpro.migrate("registration")
    with registration_process(passpro) as client:
        yield client


def counts(client: TestClient) -> dict[str, int]:
    """The starts counted, by key."""
    with client.app.state.runtime.engine.connect() as conn:
        return dict(conn.execute(select(sign_in_starts.c.address, sign_in_starts.c.failures)).all())


def started(client: TestClient) -> bool:
    """One start: True when it went to the provider with a sealed flow, False when refused 429."""
    answer = start_sign_in(client)
    if answer.status_code == 302:
        assert answer.cookies.get(FLOW_COOKIE)
        return True
    assert_too_many(answer)
    return False


def assert_too_many(answer, wait: str = "15 minutes") -> None:
    """The French 429 page, its Retry-After, and nothing sealed nor sent to the provider."""
    assert answer.status_code == 429, answer.text
    assert 0 < int(answer.headers["retry-after"]) <= LOCK_SECONDS
    page = text_of(answer.text)
    assert "Trop de connexions par compte académique" in page and f"Attendez {wait} avant" in page, page
    assert 'lang="fr"' in answer.text
    assert "location" not in answer.headers
    set_cookies = " ".join(answer.headers.get_list("set-cookie"))
    assert FLOW_COOKIE not in set_cookies  # no flow sealed (Authlib's state, nonce, verifier), none dropped
    assert SESSION_COOKIES["registration"] + "=" not in set_cookies


def test_the_start_past_the_limit_from_one_address_is_a_french_429_with_nothing_stored(passpro, registration):
    assert all(started(registration) for _ in range(LOGIN_STARTS))
    flow_before = registration.cookies.get(FLOW_COOKIE)
    before = passpro.snapshot()
    for _ in range(3):
        assert not started(registration)
    assert registration.cookies.get(FLOW_COOKIE) == flow_before  # the last flow still waits, none added
    assert SESSION_COOKIES["registration"] not in registration.cookies
    assert passpro.snapshot() == before


def test_another_address_is_not_affected(registration):
    assert all(started(registration) for _ in range(LOGIN_STARTS))
    assert not started(registration)
    registration.headers["x-test-address"] = "192.0.2.7"
    assert all(started(registration) for _ in range(LOGIN_STARTS))
    assert not started(registration)
    del registration.headers["x-test-address"]
    assert not started(registration)  # the first address's lock runs on


def test_a_verified_sign_in_clears_the_count_of_its_address(registration, academie_provider):
    assert all(started(registration) for _ in range(LOGIN_STARTS - 1))
    answer = sign_in(registration, academie_provider, "anne.principale")  # the LOGIN_STARTS-th start, answered
    assert answer.status_code == 303 and SESSION_COOKIES["registration"] in answer.cookies
    assert all(started(registration) for _ in range(LOGIN_STARTS))
    assert not started(registration)


def test_the_lock_ends_after_its_time(registration):
    assert all(started(registration) for _ in range(LOGIN_STARTS))  # the last one locks, at T0
    runtime = registration.app.state.runtime
    runtime.clock = lambda: T0 + timedelta(seconds=LOCK_SECONDS - 1)
    refused = start_sign_in(registration)
    assert_too_many(refused, "1 minute")
    assert refused.headers["retry-after"] == "1"
    runtime.clock = lambda: T0 + timedelta(seconds=LOCK_SECONDS)
    assert started(registration)
    assert all(started(registration) for _ in range(LOGIN_STARTS - 1))  # the count started again after the lock
    assert not started(registration)


def forget_old_tries_once(client: TestClient, at: datetime) -> None:
    """The service's task deleting old tries, as worker 0 runs it, once (its stop already asked), the clock at `at`."""
    app = client.app.app
    app.state.runtime.clock = lambda: at

    async def once() -> None:
        stop = asyncio.Event()
        stop.set()
        await app.state.background_tasks["forget-old-tries"](app.state.runtime, stop)

    asyncio.run(once())


def test_the_services_task_deletes_a_count_an_hour_after_its_last_start_without_another_start(registration):
    assert started(registration) and started(registration)  # at T0
    registration.app.state.runtime.clock = lambda: T0 + timedelta(minutes=30)
    registration.headers["x-test-address"] = "192.0.2.7"
    assert started(registration)
    forget_old_tries_once(registration, T0 + timedelta(hours=1))
    assert sorted(counts(registration).values()) == [1, 2]  # an hour old: kept
    forget_old_tries_once(registration, T0 + timedelta(hours=1, seconds=1))
    assert list(counts(registration).values()) == [1]  # the other address's, half an hour younger


def test_a_lock_running_past_the_hour_keeps_its_count_until_it_ends(registration, monkeypatch):
    monkeypatch.setattr(tries, "LOCK_SECONDS", 2 * 3600)  # a lock longer than the hour a count is kept
    assert all(started(registration) for _ in range(LOGIN_STARTS))  # the last one locks, at T0
    forget_old_tries_once(registration, T0 + timedelta(hours=1, seconds=1))
    assert list(counts(registration).values()) == [0]  # locked: the count starts again after the lock
    forget_old_tries_once(registration, T0 + timedelta(hours=2))
    assert list(counts(registration).values()) == [0]
    forget_old_tries_once(registration, T0 + timedelta(hours=2, seconds=1))
    assert counts(registration) == {}


def test_registrations_task_also_deletes_the_old_wrong_access_codes_and_educonnect_starts(registration):
    engine = registration.app.state.runtime.engine
    assert not access_codes.verify_access_code(engine, "123456789AB", "AAAA-AAAA-AAAA", T0).accepted
    assert access_codes.count_try(engine, "@0123456789", T0, LOGIN_STARTS) is None

    def kept() -> int:
        with engine.connect() as conn:
            return len(conn.execute(select(sign_in_failures.c.ine)).all())

    forget_old_tries_once(registration, T0 + timedelta(hours=1))
    assert kept() == 2
    forget_old_tries_once(registration, T0 + timedelta(hours=1, seconds=1))
    assert kept() == 0


def test_an_address_is_counted_under_an_hmac_keyed_from_the_master_key_the_same_in_every_process(passpro, registration):
    assert all(started(registration) for _ in range(LOGIN_STARTS - 1))
    secret = MasterKey(parse_master_key(passpro.master_key)).derive(ADDRESS_KEY_INFO, b"")
    host = "testclient"  # the TestClient's address
    assert counts(registration) == {address_key(secret, host): LOGIN_STARTS - 1}
    assert address_key(secret, host) != "@" + hashlib.sha256(host.encode()).hexdigest()[:10]  # not the unkeyed form
    assert address_key(b"another master key's".ljust(32), host) != address_key(secret, host)
    with registration_process(passpro) as other:  # another worker or machine: the same address, the same count
        assert started(other)  # the LOGIN_STARTS-th, which locks
        assert not started(other)
    assert not started(registration)
