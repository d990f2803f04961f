"""The Redis rate limiter: one Lua script per admission (all buckets at once), one per settlement.

Each bucket is a sorted set (lease -> expiry, ms on the Redis clock) and a hash (lease -> amount,
negative while unsettled; plus ``_t``, the running total, and ``_u``, the unsettled part of it).
The script prunes expired charges, checks every bucket, and only when all fit records the lease in
each: no read-modify-write between replicas, and every replica uses the Redis server's clock, so
their own clocks cannot disagree about a window. Renewal is one script for every lease a process
holds (in chunks of ``RENEW_CHUNK``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inferlab.ratelimit.protocol import BucketState, Charge, Decision

_PRUNE = """
local function prune(z, h, now)
  local total = tonumber(redis.call('HGET', h, '_t') or '0')
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 5000)
  if #expired > 0 then
    local unsettled = 0
    local amounts = redis.call('HMGET', h, unpack(expired))
    for j = 1, #amounts do
      local a = tonumber(amounts[j] or '0')
      if a < 0 then a = -a; unsettled = unsettled + a end
      total = total - a
    end
    redis.call('ZREM', z, unpack(expired))
    redis.call('HDEL', h, unpack(expired))
    redis.call('HSET', h, '_t', total)
    if unsettled > 0 then redis.call('HINCRBY', h, '_u', -unsettled) end
  end
  return total
end
local function reset_ms(z, now)
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  if #first == 0 then return 0 end
  return math.max(0, tonumber(first[2]) - now)
end
"""

ACQUIRE = _PRUNE + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = ARGV[1]
local n = #KEYS / 2
local totals = {}
local denied, retry = -1, 0
for i = 1, n do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, amount, ttl = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local total = prune(z, h, now)
  totals[i] = total
  if denied < 0 and total + amount > limit then
    denied = i - 1
    if amount > limit then
      retry = ttl
    else
      local held = redis.call('ZRANGE', z, 0, 999, 'WITHSCORES')
      local freed = 0
      for j = 1, #held, 2 do
        freed = freed + math.abs(tonumber(redis.call('HGET', h, held[j]) or '0'))
        if total - freed + amount <= limit then retry = math.max(0, tonumber(held[j + 1]) - now); break end
      end
      if retry == 0 then retry = ttl end
    end
  end
end
local out = {denied, retry}
for i = 1, n do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, amount, ttl = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  if denied < 0 then
    redis.call('ZADD', z, now + ttl, lease)
    redis.call('HSET', h, lease, -amount)
    totals[i] = redis.call('HINCRBY', h, '_t', amount)
    if amount > 0 then redis.call('HINCRBY', h, '_u', amount) end
    redis.call('PEXPIRE', z, ttl + 1000)
    redis.call('PEXPIRE', h, ttl + 1000)
  end
  out[#out + 1] = math.max(0, limit - totals[i])
  out[#out + 1] = reset_ms(z, now)
  out[#out + 1] = tonumber(redis.call('HGET', h, '_u') or '0')
end
return out
"""

SETTLE = """
local lease = ARGV[1]
for i = 1, #KEYS / 2 do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local amount = tonumber(ARGV[i + 1])
  local old = redis.call('HGET', h, lease)
  if old then
    old = tonumber(old)
    if old < 0 then old = -old; redis.call('HINCRBY', h, '_u', -old) end
    redis.call('HINCRBY', h, '_t', amount - old)
    if amount <= 0 then
      redis.call('ZREM', z, lease)
      redis.call('HDEL', h, lease)
    else
      redis.call('HSET', h, lease, amount)
    end
  end
end
return 1
"""

RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local alive = 0
for i = 1, #KEYS / 2 do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local lease, ttl = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  local score = tonumber(redis.call('ZSCORE', z, lease) or '0')
  if score > now then
    local expires = math.max(score, now + ttl)
    redis.call('ZADD', z, expires, lease)
    local pttl = redis.call('PTTL', z)
    if pttl >= 0 and pttl < expires - now + 1000 then
      redis.call('PEXPIRE', z, expires - now + 1000)
      redis.call('PEXPIRE', h, expires - now + 1000)
    end
    alive = alive + 1
  end
end
return alive
"""

RENEW_CHUNK = 256  # leases per script call: bounds one call's time on the Redis server


class RedisRateLimiter:
    """``client`` is a ``redis.asyncio.Redis``; keys are prefixed with ``prefix``."""

    def __init__(self, client: Any, prefix: str = "inferlab:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._acquire = client.register_script(ACQUIRE)
        self._settle = client.register_script(SETTLE)
        self._renew = client.register_script(RENEW)

    def _keys(self, key: str) -> tuple[str, str]:
        z = self._prefix + key
        return z, z + ":a"

    async def acquire(self, lease: str, charges: Sequence[Charge]) -> Decision:
        keys: list[str] = []
        args: list[Any] = [lease]
        for charge in charges:
            keys.extend(self._keys(charge.key))
            args.extend((charge.limit, charge.amount, int(charge.ttl_s * 1000)))
        raw = await self._acquire(keys=keys, args=args)
        denied, retry_ms = int(raw[0]), float(raw[1])
        states = tuple(
            BucketState(charge.limit, int(raw[2 + 3 * i]), float(raw[3 + 3 * i]) / 1000, int(raw[4 + 3 * i]))
            for i, charge in enumerate(charges)
        )
        return Decision(denied < 0, states, retry_ms / 1000, denied)

    async def settle(self, lease: str, amounts: Sequence[tuple[str, int]]) -> None:
        if not amounts:
            return
        keys: list[str] = []
        for key, _ in amounts:
            keys.extend(self._keys(key))
        await self._settle(keys=keys, args=[lease, *(int(amount) for _, amount in amounts)])

    async def renew(self, held: Sequence[tuple[str, str, float]]) -> int:
        alive = 0
        for start in range(0, len(held), RENEW_CHUNK):
            keys: list[str] = []
            args: list[Any] = []
            for lease, key, ttl_s in held[start:start + RENEW_CHUNK]:
                keys.extend(self._keys(key))
                args.extend((lease, int(ttl_s * 1000)))
            alive += int(await self._renew(keys=keys, args=args))
        return alive

    async def aclose(self) -> None:
        await self._client.aclose()
