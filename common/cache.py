"""Django's Redis cache with one redis client per connection pool, made once per process.

django.core.cache.backends.redis builds a new `redis.Redis` object for every cache operation
(redis-py then rebuilds its table of response callbacks each time): on the hot reads of the API
(GET /rounds/current is two cache operations) that cost more than the round trip to Redis. The
clients share the backend's connection pools, as before; redis-py's pools reconnect after a fork.
"""

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # Django's own, untyped
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(DjangoRedisCache):
    """settings.CACHES' BACKEND in production: `common.cache.RedisCache`."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
