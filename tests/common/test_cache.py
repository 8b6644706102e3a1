"""common.cache.RedisCache (production's cache) against a real redis-server: one client per pool, same answers."""

import pytest

from common.cache import RedisCache
from risk.chaos_processes import PrivateRedis


@pytest.fixture(scope="module")
def redis_url():
    server = PrivateRedis()  # a private redis-server started from the installed binary, never the shared 6379
    print(f"\nredis-server for common.cache: {server.url}")
    yield server.url
    server.stop()


def test_the_cache_reuses_one_client_and_answers_as_djangos(redis_url):
    cache = RedisCache(redis_url, {})
    cache.set("k", {"pools": (1, 2)}, timeout=30)
    cache.set("n", 5, timeout=30)
    assert cache.get("k") == {"pools": (1, 2)}
    assert cache.get_many(["k", "n", "missing"]) == {"k": {"pools": (1, 2)}, "n": 5}
    assert cache.incr("n") == 6
    client = cache._cache.get_client()
    assert cache._cache.get_client() is client  # Django's own backend builds a new redis.Redis per operation
    assert cache._cache.get_client(write=True) is client  # one server: the write pool is the read pool
    cache.delete("k")
    assert cache.get("k") is None
