"""Readiness: may this gateway — or this model on it — be sent traffic now?

The rule (``GET /ready``, and ``GET /ready?model=NAME`` for load balancers that route per model):

- draining (SIGTERM received) → 503 ``draining``, for the gateway and for every model;
- a *critical* dependency down → 503 ``not_ready``: every request would fail here. Critical are
  the database when auth is on, and Redis when a configured limit fails closed
  (``ratelimit.failure``); other dependencies are reported, never decisive;
- otherwise the gateway is ready (200) while at least one model has a routable replica —
  ``degraded`` when some model or a non-critical dependency is down — and a model is ready (200)
  while it has a routable replica. An unknown model is a 404.

A dependency is checked at most once per ``ttl_s`` (concurrent probes share one check), and each
check is bounded by its own timeout, so probes every few seconds cost next to nothing and never hang.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inferlab.dependencies import Dependencies
from inferlab.drain import DrainController
from inferlab.router import BackendPool, ModelRouter

_REPLICA_FIELDS = ("healthy", "engine_state", "misconfigured", "error")  # the last two when adapters set them


def pool_state(pool: BackendPool) -> dict[str, Any]:
    now = pool.clock()
    replicas = []
    for replica in pool.replicas:
        snapshot = replica.snapshot(now)
        entry: dict[str, Any] = {"name": replica.name, "routable": replica.routable(now),
                                 "breaker": snapshot["breaker"]["state"]}
        entry.update((field, snapshot[field]) for field in _REPLICA_FIELDS if field in snapshot)
        replicas.append(entry)
    state: dict[str, Any] = {"ready": any(r["routable"] for r in replicas), "replicas": replicas}
    if not state["ready"] and pool.is_ready():  # scaled to zero by design: the next request wakes it
        state.update(ready=True, standby=True)
    return state


def model_state(router: ModelRouter, name: str) -> dict[str, Any]:
    """The model's replicas; its separate embeddings pool, if any, is reported but not decisive."""
    state = pool_state(router.pools[name])
    embeddings = router.embedding_pools.get(name)
    if embeddings is not None:
        state["embeddings"] = pool_state(embeddings)
    return state


def _whole(model: dict[str, Any]) -> bool:
    return bool(model["ready"] and model.get("embeddings", model)["ready"])


class Readiness:
    def __init__(
        self, router: ModelRouter, drain: DrainController, dependencies: Dependencies,
        engine_states: Callable[[], dict[str, str]],
    ) -> None:
        self._router = router
        self._drain = drain
        self._dependencies = dependencies
        self._engine_states = engine_states

    async def gateway(self) -> tuple[int, dict[str, Any]]:
        models = {name: model_state(self._router, name) for name in self._router.names()}
        dependencies = await self._dependencies.states()
        blocked = self._blocked(dependencies)
        degraded = not all(map(_whole, models.values())) or any(d["status"] != "up" for d in dependencies.values())
        if blocked:
            status = blocked
        elif not any(m["ready"] for m in models.values()):
            status = "not_ready"
        else:
            status = "degraded" if degraded else "ready"
        body = {"status": status, "models": models, "dependencies": dependencies, "engines": self._engine_states()}
        return (200 if status in ("ready", "degraded") else 503), body

    async def model(self, name: str) -> tuple[int, dict[str, Any]]:
        self._router.pool(name)  # ModelNotFound (404) for a model this gateway does not serve
        state = model_state(self._router, name)
        dependencies = await self._dependencies.states()
        status = self._blocked(dependencies) or ("ready" if state["ready"] else "not_ready")
        body = {"status": status, "model": name, "models": {name: state}, "dependencies": dependencies}
        return (200 if status == "ready" else 503), body

    def _blocked(self, dependencies: dict[str, dict[str, Any]]) -> str | None:
        if self._drain.draining:
            return "draining"
        if any(d["critical"] and d["status"] != "up" for d in dependencies.values()):
            return "not_ready"
        return None
