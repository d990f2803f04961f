"""The autoscaler from typed settings (called by the composition root); None when it is off."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from inferlab.autoscale.actuator import Actuator
from inferlab.autoscale.decision import ScaleDecider, ScalePolicy
from inferlab.autoscale.kubernetes import KubernetesActuator
from inferlab.autoscale.local import Engine, LocalActuator, ReplicaFactory
from inferlab.autoscale.schedule import Window, bounds_at, window
from inferlab.autoscale.service import AutoscaleObserver, Autoscaler, PoolAutoscaler
from inferlab.autoscale.signals import PoolSignals
from inferlab.config import ModelConfig, Settings
from inferlab.config.autoscale import KubernetesTarget, PoolAutoscale
from inferlab.coordinator.replicas import NewEngine, Replicas
from inferlab.router.build import build_replica
from inferlab.router.pool import BackendPool
from inferlab.router.replica import Replica
from inferlab.scheduler.queue import WaitQueues
from inferlab.tenants.tier import TierCatalogue


class Schedule:
    """The bounds in force now (UTC), from the pool's scheduled windows."""

    def __init__(self, windows: list[Window], default: tuple[int, int]) -> None:
        self.windows = windows
        self.default = default

    def __call__(self) -> tuple[int, int]:
        return bounds_at(datetime.now(UTC), self.windows, self.default) if self.windows else self.default


class QueueDepth:
    def __init__(self, queues: WaitQueues, pool: BackendPool) -> None:
        self._queues = queues
        self._pool = pool

    def __call__(self) -> int:
        return self._queues.queue(self._pool).depth


def scale_policy(pool: PoolAutoscale) -> ScalePolicy:
    return ScalePolicy(target=pool.target, min_replicas=pool.min_replicas, max_replicas=pool.max_replicas,
                       stable_window_s=pool.stable_window_s, panic_window_s=pool.panic_window_s,
                       panic_threshold=pool.panic_threshold, tolerance=pool.tolerance,
                       scale_down_delay_s=pool.scale_down_delay_s, headroom=pool.headroom, idle_s=pool.idle_s)


def _ttft_slo_s(settings: Settings, pool: PoolAutoscale) -> float | None:
    if pool.ttft_slo_ms is not None:
        return pool.ttft_slo_ms / 1000
    tier = TierCatalogue(settings.tenants.tiers).get(settings.tenants.default_tier)
    ttft = tier.slo.ttft_p95_ms if tier is not None else None
    return ttft / 1000 if ttft is not None else None


def _local(pool: BackendPool, model: ModelConfig, new_engine: NewEngine | None, settings: Settings,
           logger: logging.Logger) -> LocalActuator:
    if new_engine is None or model.backend != "llamacpp" or model.url or model.urls or model.distributed:
        raise ValueError(f"autoscale: model {model.name!r} is not run by this gateway as local llama.cpp engines; "
                         "scale it with actuator: kubernetes")
    limit = pool.replicas[0].limit if pool.replicas else model.parallel

    def factory(name: str) -> tuple[Replica, Engine]:
        engine, backend, endpoint = new_engine(name, model)
        return build_replica(model, backend, endpoint, limit=limit), engine

    engines: dict[str, Engine] = {}
    for replica in pool.replicas:
        engine = getattr(replica.backend, "engine", None)
        if engine is not None:
            engines[replica.name] = engine
    typed: ReplicaFactory = factory
    return LocalActuator(pool, typed, startup_timeout_s=settings.engines.startup_timeout_s,
                         drain_timeout_s=settings.autoscale.drain_timeout_s, logger=logger, engines=engines)


def _kubernetes(target: KubernetesTarget, session: aiohttp.ClientSession, logger: logging.Logger) -> KubernetesActuator:
    token = target.token.get_secret_value() if target.token is not None else None
    if token is None and Path(target.token_file).is_file():
        token = Path(target.token_file).read_text().strip()
    return KubernetesActuator(session, target.api_url, target.namespace, target.deployment, token=token,
                              ca_file=target.ca_file, logger=logger)


def build_autoscaler(settings: Settings, replicas: Replicas, queues: WaitQueues, session: aiohttp.ClientSession, *,
                     observer: AutoscaleObserver | None = None, logger: logging.Logger) -> Autoscaler | None:
    config = settings.autoscale
    if not config.enabled or not config.pools:
        return None
    autoscaler = Autoscaler([], interval_s=config.interval_s, mode=config.mode, logger=logger)
    for built in replicas.models:
        pool_config = config.pools.get(built.model.name)
        if pool_config is None:
            continue
        pool = built.pool
        actuator: Actuator
        if pool_config.actuator == "kubernetes":
            assert pool_config.kubernetes is not None
            actuator = _kubernetes(pool_config.kubernetes, session, logger)
        else:
            actuator = _local(pool, built.model, replicas.new_engine, settings, logger)
        policy = scale_policy(pool_config)
        bounds = Schedule([window(w.days, w.start, w.end, w.min_replicas, w.max_replicas) for w in pool_config.schedule],
                          (policy.min_replicas, policy.max_replicas))
        signals = PoolSignals(pool, QueueDepth(queues, pool),
                              kv_target=pool_config.kv_target, ttft_slo_s=_ttft_slo_s(settings, pool_config))
        autoscaler.pools.append(PoolAutoscaler(pool, ScaleDecider(policy), signals, actuator, mode=config.mode, bounds=bounds,
                                    activation_timeout_s=config.activation_timeout_s, history=config.history,
                                    observer=observer, logger=logger, wake=autoscaler.wake))
    return autoscaler
