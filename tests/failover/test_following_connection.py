"""A connection to the primary through the Sentinels asks them again at each try to connect (redis_connect.py
FollowingConnection): a primary lost while the Sentinels already name the new one is left at once, not
tried again for the whole retry budget (about 10 s) at the address the first try had."""

from __future__ import annotations

from urllib.parse import urlsplit

from shared.runtime.redis_connect import FollowingConnection, failover_retry

LOST = ("127.0.0.1", 9549)  # nothing listens there: the lost primary


class Sentinels:
    """The pool's view of the Sentinels: the lost primary at the first ask, the new one after."""

    is_master = True

    def __init__(self, new: tuple[str, int]) -> None:
        self.new, self.asked = new, 0

    async def get_master_address(self) -> tuple[str, int]:
        self.asked += 1
        return LOST if self.asked == 1 else self.new


async def test_each_try_asks_the_sentinels_again(redis_url: str) -> None:
    url = urlsplit(redis_url)
    sentinels = Sentinels((url.hostname, url.port or 6379))
    connection = FollowingConnection(connection_pool=sentinels, retry=failover_retry(), socket_connect_timeout=1)
    try:
        await connection.connect_check_health()  # as redis-py reconnects a broken connection (with its retries)
        assert (connection.host, connection.port) == sentinels.new
        assert sentinels.asked == 2  # the lost primary tried once
    finally:
        await connection.disconnect()
