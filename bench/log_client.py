"""The bench's clients of the log, built as the services build theirs (shared/runtime/redis_connect.py):
through the Sentinels or on the Redis Cluster when the environment names them (PASSPRO_REDIS_SENTINELS,
PASSPRO_REDIS_CLUSTER_NODES; the URL given to the bench then brings only its credentials), else from the URL."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from shared.runtime.redis_connect import redis_client
from shared.runtime.settings import ServiceSettings


def log_client(redis_url: str, **options: Any) -> Redis:
    return redis_client(ServiceSettings(redis_url=redis_url), **options)
