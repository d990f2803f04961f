"""``cache:``: the exact-match response cache (memory LRU or Redis)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from inferlab.config.base import StrictModel


class CacheSettings(StrictModel):
    backend: Literal["auto", "memory", "redis"] = Field("auto", description="auto: redis when redis_url is set")
    ttl_s: float = Field(3600.0, gt=0)
    max_entries: int = Field(10000, ge=1, description="memory: LRU bound")
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="memory: LRU bound in bytes")
    max_entry_bytes: int = Field(1024 * 1024, ge=1, description="larger responses are not cached")
    redis_timeout_s: float = Field(0.25, gt=0, description="a slower Redis is a miss, never a wait")
    redis_prefix: str = Field("inferlab:cache:", min_length=1)
