"""``flask_caching.backends.rediscache``'s path: the same classes, for code that imports them
from there (``from flask_stash.backends.rediscache import RedisCache``)."""

from flask_stash.backends.redis import RedisCache, RedisClusterCache, RedisSentinelCache

__all__ = ["RedisCache", "RedisClusterCache", "RedisSentinelCache"]
