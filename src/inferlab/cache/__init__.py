"""The response cache: the ``CacheManager`` interface and its implementations (Redis: ``inferlab.cache.redis``)."""

from inferlab.cache.memory import MemoryCache
from inferlab.cache.protocol import CachedResponse, CacheManager

__all__ = ["CacheManager", "CachedResponse", "MemoryCache"]
