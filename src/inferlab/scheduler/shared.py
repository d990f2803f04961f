"""Fair-share counters shared by gateway replicas through Redis (``scheduler.shared_counters``).

Each gateway decides on its own counters at once, in process, and every ``sync_interval_s``
merges them with the others' in one Lua script per model: it adds the service this gateway gave
since the last merge (and raises the tenants it lifted to their floor), then reads every
tenant's total back. So weights hold across replicas, approximately:

- a gateway sees the others' service at most one interval late (plus the Redis round trip); in
  between, two gateways may both favour a tenant that was behind, overshooting its share by at
  most what they dispatch in one interval;
- lifting (a tenant that starts waiting starts at the lowest counter of those waiting) is
  decided on this gateway's own waiters; the floor then holds everywhere;
- a gateway can only serve the requests sent to it: a tenant whose traffic all goes through one
  gateway cannot get more than that gateway's slots, whatever its weight (``docs/benchmarks.md``
  measures the approximation with two gateway processes).

While Redis does not answer, each gateway keeps its local counters and merges what it owes later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from inferlab.scheduler.counters import LocalCounters

NO_FLOOR = -1e300

SYNC_SCRIPT = """
local key = KEYS[1]
for i = 2, #ARGV, 3 do
  local tenant = ARGV[i]
  local value = tonumber(redis.call('HGET', key, tenant) or '0') + tonumber(ARGV[i + 1])
  local floor = tonumber(ARGV[i + 2])
  if value < floor then value = floor end
  redis.call('HSET', key, tenant, string.format('%.17g', value))
end
redis.call('PEXPIRE', key, ARGV[1])
return redis.call('HGETALL', key)
"""


class SharedCounters(LocalCounters):
    """Local counters plus what this process owes the shared totals since the last merge."""

    __slots__ = ("_floors", "_pending")

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, float] = {}
        self._floors: dict[str, float] = {}

    def add(self, tenant: str, amount: float) -> None:
        super().add(tenant, amount)
        self._pending[tenant] = self._pending.get(tenant, 0.0) + amount

    def lift(self, tenant: str, floor: float) -> float:
        before = self.value(tenant)
        after = super().lift(tenant, floor)
        if after > before:
            self._floors[tenant] = max(self._floors.get(tenant, NO_FLOOR), floor)
        return after

    def take_changes(self) -> tuple[dict[str, float], dict[str, float]]:
        pending, floors = self._pending, self._floors
        self._pending, self._floors = {}, {}
        return pending, floors

    def give_back(self, pending: dict[str, float], floors: dict[str, float]) -> None:
        """A merge failed: what it carried is owed again."""
        for tenant, amount in pending.items():
            self._pending[tenant] = self._pending.get(tenant, 0.0) + amount
        for tenant, floor in floors.items():
            self._floors[tenant] = max(self._floors.get(tenant, NO_FLOOR), floor)

    def merged(self, totals: dict[str, float]) -> None:
        """The shared totals (as of the merge) plus what this process did since."""
        values = self._values
        for tenant, total in totals.items():
            value = total + self._pending.get(tenant, 0.0)
            floor = self._floors.get(tenant)
            values[tenant] = max(value, floor) if floor is not None else value
        self.generation += 1


class CounterSync:
    """Merges every model's ``SharedCounters`` through Redis every ``interval_s`` (a background part)."""

    def __init__(self, redis: Any, counters: dict[str, SharedCounters], *, prefix: str, interval_s: float,
                 ttl_s: float, logger: logging.Logger) -> None:
        self._redis = redis
        self._counters = counters
        self._prefix = prefix
        self._interval_s = interval_s
        self._ttl_ms = int(ttl_s * 1000)
        self._log = logger
        self._script: Any = None
        self.failing = False
        self.merges = 0

    async def sync_once(self) -> None:
        if self._script is None:
            self._script = self._redis.register_script(SYNC_SCRIPT)
        for model, counters in list(self._counters.items()):
            pending, floors = counters.take_changes()
            args: list[Any] = [self._ttl_ms]
            for tenant in pending.keys() | floors.keys():
                args += [tenant, repr(pending.get(tenant, 0.0)), repr(floors.get(tenant, NO_FLOOR))]
            try:
                reply = await self._script(keys=[f"{self._prefix}vtc:{{{model}}}"], args=args)
            except BaseException:
                counters.give_back(pending, floors)
                raise
            counters.merged(_totals(reply))
        self.merges += 1

    async def run(self) -> None:
        from redis.exceptions import RedisError

        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sync_once()
            except (RedisError, OSError, TimeoutError) as exc:
                if not self.failing:
                    self._log.warning("fair-share counters not merged (Redis); scheduling on local counters",
                                      extra={"error": type(exc).__name__})
                self.failing = True
                continue
            if self.failing:
                self._log.info("fair-share counters merged again")
            self.failing = False


def _totals(reply: list[Any]) -> dict[str, float]:
    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    return {text(reply[i]): float(text(reply[i + 1])) for i in range(0, len(reply), 2)}
