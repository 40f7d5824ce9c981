"""The one place Redis clients of the log are built (SPEC §9): through the Sentinels when
PASSPRO_REDIS_SENTINELS is set (it takes precedence over PASSPRO_REDIS_URL), else from the URL; on a Redis
Cluster when PASSPRO_REDIS_CLUSTER_NODES is set (it takes precedence over both): redis-py's RedisCluster,
which sends each single-key command to the shard owning its slot (the log's keys carry the académie as hash
tag, so one académie is on one shard; the append runs on that shard's primary: log/client.py).

A client through the Sentinels asks them for the primary at each new connection (redis-py's
SentinelConnectionPool), and a connection that breaks (the primary killed) or answers READONLY (the old
primary come back as a replica) is dropped; the command is then run again, with a short backoff, for a
few seconds: the time a failover takes. Commands the log runs again are safe to: reads, and the append,
whose event id makes a second run answer `duplicate` with the first's positions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Retries of a command while the primary changes: backoff 50 ms doubling up to 500 ms, 24 tries (about 10 s,
# a Sentinel failover's usual span); past that the caller sees the error (a 503 on the API).
RETRY_TRIES = 24
RETRY_BACKOFF_CAP_S = 0.5
RETRY_BACKOFF_BASE_S = 0.05
SENTINEL_TIMEOUT_S = 0.5  # one Sentinel that does not answer in this is skipped for the next


def parse_sentinels(
    value: str, *, default_port: int = 26379, setting: str = "PASSPRO_REDIS_SENTINELS"
) -> list[tuple[str, int]]:
    """`host:port,host:port,...` (a bare host is port 26379) as (host, port) pairs; a malformed one is refused."""
    sentinels = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, str(default_port)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{setting}: « {item} » n'est pas de la forme hôte:port")
        sentinels.append((host, int(port)))
    return sentinels


def parse_cluster_nodes(value: str) -> list[tuple[str, int]]:
    """PASSPRO_REDIS_CLUSTER_NODES: `host:port,...` (a bare host is port 6379); at least one node."""
    nodes = parse_sentinels(value, default_port=6379, setting="PASSPRO_REDIS_CLUSTER_NODES")
    if not nodes:
        raise ValueError("PASSPRO_REDIS_CLUSTER_NODES: aucun nœud donné")
    return nodes


def failover_retry() -> Retry:
    return Retry(
        ExponentialBackoff(cap=RETRY_BACKOFF_CAP_S, base=RETRY_BACKOFF_BASE_S),
        RETRY_TRIES,
        supported_errors=(RedisConnectionError, RedisTimeoutError, ReadOnlyError, ConnectionError, OSError),
    )


class FollowingConnection(SentinelManagedConnection):
    """A connection to the primary that asks the Sentinels again each time it reconnects. redis-py 8.1's own
    reconnects a broken connection, when a command is run again, through connect_check_health, which goes
    back to the address it had (the lost primary, or the same machine come back as a replica: READONLY)
    until its retries run out; only a new connection of the pool asked the Sentinels."""

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True):
        if self.is_connected or not self.connection_pool.is_master:
            return await super().connect_check_health(check_health, retry_socket_connect)

        async def attempt() -> None:
            self.host, self.port = await self.connection_pool.get_master_address()
            await super(FollowingConnection, self).connect_check_health(check_health, retry_socket_connect=False)

        if not retry_socket_connect:
            return await attempt()
        # The Sentinels asked again at each try: redis-py's own retry of the socket's connect kept the address
        # of the first, and spent its ~10 s on a lost primary while the Sentinels already named the new one.
        return await self.retry.call_with_retry(attempt, lambda error: self.disconnect())

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        """A new connection to "the primary" must be to a primary: a Sentinel's answer can be a moment old,
        and a lost primary's address can answer again as an empty replica syncing (replica-serve-stale-data:
        its reads answer "nothing" without an error). Anything but a primary is refused, and asked again."""
        await super().on_connect_check_health(check_health)
        if not self.connection_pool.is_master:
            return
        await self.send_command("ROLE")
        role = await self.read_response()
        name = role[0].decode() if isinstance(role[0], bytes) else role[0]
        if name != "master":
            await self.disconnect()
            raise RedisConnectionError(f"{self.host}:{self.port} is a {name}, not the primary")


def log_target(settings: Any) -> str:
    """Where the log is looked for, for messages: the cluster's nodes, the Sentinels and the service, or the URL."""
    cluster = getattr(settings, "redis_cluster_nodes", "")
    if cluster:
        return f"Redis Cluster {cluster}"
    sentinels = getattr(settings, "redis_sentinels", "")
    if sentinels:
        return f"Sentinels {sentinels} (service {settings.redis_sentinel_service})"
    return settings.redis_url


def redis_client(settings: Any, **options: Any) -> Redis:
    """The log's client for these settings (ServiceSettings or any object with redis_url and, optionally,
    redis_sentinels / redis_sentinel_service). `options` go to the client (decode_responses, timeouts...)."""
    options.setdefault("socket_connect_timeout", 5)
    cluster = getattr(settings, "redis_cluster_nodes", "")
    if cluster:
        return cluster_client(settings, cluster, **options)
    sentinels = getattr(settings, "redis_sentinels", "")
    if not sentinels:
        return Redis.from_url(settings.redis_url, **options)
    url = urlsplit(settings.redis_url or "redis://")
    if url.password and "password" not in options:
        options["password"] = url.password
    if url.username and "username" not in options:
        options["username"] = url.username
    db = url.path.strip("/")
    if db.isdigit():
        options.setdefault("db", int(db))
    options.setdefault("retry", failover_retry())
    options.setdefault("connection_class", FollowingConnection)
    sentinel = Sentinel(
        parse_sentinels(sentinels),
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S},
    )
    return sentinel.master_for(settings.redis_sentinel_service, redis_class=Redis, **options)


def cluster_client(settings: Any, nodes: str, **options: Any) -> RedisCluster:
    """A RedisCluster over the given nodes (it discovers the others); credentials from redis_url if any."""
    url = urlsplit(getattr(settings, "redis_url", "") or "redis://")
    if url.password and "password" not in options:
        options["password"] = url.password
    if url.username and "username" not in options:
        options["username"] = url.username
    options.pop("db", None)  # a cluster has only db 0
    startup = [ClusterNode(host, port) for host, port in parse_cluster_nodes(nodes)]
    return RedisCluster(startup_nodes=startup, **options)


def min_replicas(settings: Any) -> int:
    """How many replicas a write must be on before it is acknowledged (and a view's page before it is
    applied): PASSPRO_REDIS_MIN_REPLICAS, by default 1 with Sentinels (a primary and at least one replica)
    or on a Redis Cluster (each shard's primary has its replica: the cluster promotes it when the primary
    is lost, and only a write it holds survives), and 0 on one Redis. A cluster without replicas (a
    developer's) sets 0."""
    explicit = getattr(settings, "redis_min_replicas", None)
    if explicit is not None:
        return explicit
    return 1 if getattr(settings, "redis_sentinels", "") or getattr(settings, "redis_cluster_nodes", "") else 0


def replication(settings: Any):
    """The replication an acknowledged write needs under these settings (EventLog's `replication`)."""
    from shared.runtime.log.client import Replication

    return Replication(
        min_replicas(settings), getattr(settings, "redis_replica_timeout_ms", 2000), getattr(settings, "redis_wait_aof", False)
    )
