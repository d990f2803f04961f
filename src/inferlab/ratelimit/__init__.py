"""Rate limits: the ``RateLimiter`` interface and its implementations (Redis: ``inferlab.ratelimit.redis``)."""

from inferlab.ratelimit.memory import MemoryRateLimiter
from inferlab.ratelimit.protocol import BucketState, Charge, Decision, LimitKind, RateLimiter

__all__ = ["BucketState", "Charge", "Decision", "LimitKind", "MemoryRateLimiter", "RateLimiter"]
