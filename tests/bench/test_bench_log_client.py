"""The bench and the audits' helper find the log as the services do (shared/runtime/redis_connect.py): through
the Sentinels or on the cluster the environment names, else at the URL. Only the clients are built: none
connects here."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from bench.log_client import log_client
from services.records.checkpoints import audit_client

URL = "redis://127.0.0.1:9540/3"  # nothing listens there: nothing is asked


@pytest.fixture(autouse=True)
def no_log_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PASSPRO_REDIS_SENTINELS", "PASSPRO_REDIS_CLUSTER_NODES"):
        monkeypatch.delenv(name, raising=False)


async def test_the_bench_finds_the_log_as_the_services_do(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = log_client(URL)
    assert plain.connection_pool.connection_kwargs["port"] == 9540 and plain.connection_pool.connection_kwargs["db"] == 3
    monkeypatch.setenv("PASSPRO_REDIS_SENTINELS", "127.0.0.1:9541,127.0.0.1:9542")
    through = log_client(URL, decode_responses=True)
    assert isinstance(through.connection_pool, SentinelConnectionPool)
    assert through.connection_pool.service_name == "passpro" and through.connection_pool.connection_kwargs["db"] == 3
    monkeypatch.setenv("PASSPRO_REDIS_CLUSTER_NODES", "127.0.0.1:9543")
    cluster = log_client(URL)
    assert isinstance(cluster, RedisCluster)
    for client in (plain, through, cluster):
        await client.aclose()


async def test_the_audits_client_follows_the_settings() -> None:
    plain = audit_client(SimpleNamespace(redis_url=URL))
    kwargs = plain.connection_pool.connection_kwargs
    assert kwargs["port"] == 9540 and kwargs["decode_responses"] and kwargs["encoding_errors"] == "surrogateescape"
    through = audit_client(SimpleNamespace(redis_url=URL, redis_sentinels="127.0.0.1:9541", redis_sentinel_service="p"))
    assert isinstance(through.connection_pool, SentinelConnectionPool)
    assert through.connection_pool.connection_kwargs["encoding_errors"] == "surrogateescape"
    for client in (plain, through):
        await client.aclose()
