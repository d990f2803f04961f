"""The registry in a running gateway: at start the store is migrated (or checked), the seed
written and the state applied (pools built, engines started) before the first request; then three
loops: ``watch`` polls the change counter and reloads, ``flush`` writes this gateway's
per-variant figures, and ``judge`` rules on every running experiment each interval (every
gateway judges; the store's conditional update lets exactly one decision through)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from inferlab.config import JudgeSettings, RegistrySettings
from inferlab.errors import StoreUnavailable
from inferlab.registry.judge import Verdict, judge
from inferlab.registry.model import STABLE, Experiment
from inferlab.registry.protocol import RegistryStore
from inferlab.registry.reload import ServedVersions
from inferlab.registry.resolve import Resolver
from inferlab.registry.seed import Seed, write_seed
from inferlab.registry.stats import VariantStats

STORE_ERRORS = (SQLAlchemyError, OSError, StoreUnavailable)


class RegistryService:
    def __init__(self, store: RegistryStore, resolver: Resolver, served: ServedVersions, stats: VariantStats,
                 settings: RegistrySettings, seed: Seed, *, gateway: str, logger: logging.Logger,
                 prepare: Callable[[], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.resolver = resolver
        self.served = served
        self.stats = stats
        self.settings = settings
        self._seed = seed
        self._gateway = gateway
        self._log = logger
        self._prepare = prepare
        self._applied = -1
        self._refresh = asyncio.Lock()
        self._flushing = asyncio.Lock()

    @property
    def judge_settings(self) -> JudgeSettings:
        return self.settings.judge

    @contextlib.asynccontextmanager
    async def preparing(self) -> AsyncIterator[None]:
        """The schema (migrated or checked) and the seed: before any other part migrates (alembic
        runs one upgrade per process at a time)."""
        if self._prepare is not None:
            await self._prepare()
        await write_seed(self.store, self._seed)
        yield

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The registry's state served (pools built, engines started and ready), after ``preparing``."""
        await self.refresh()
        try:
            yield
        finally:
            with contextlib.suppress(*STORE_ERRORS):
                await self.flush()
            await self.served.stop()

    async def refresh(self) -> None:
        """Reload when the store's counter moved since the state served now."""
        async with self._refresh:
            if await self.store.counter() == self._applied:
                return
            state = await self.store.load()
            await self.served.apply(state)
            self._applied = state.counter

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await self.refresh()
            except STORE_ERRORS as exc:
                self._log.warning("registry: the store does not answer; serving the last state",
                                  extra={"error": type(exc).__name__})

    async def flush(self) -> None:
        """Write this gateway's changed figures (one writer at a time; kept dirty when the write fails)."""
        async with self._flushing:
            rows = self.stats.take_dirty()
            try:
                await self.store.write_figures(self._gateway, rows)
            except BaseException:
                self.stats.dirty.update((experiment, variant) for experiment, variant, _ in rows)
                raise

    async def keep_flushing(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_interval_s)
            try:
                await self.flush()
            except STORE_ERRORS as exc:
                self._log.warning("registry: variant figures not written yet", extra={"error": type(exc).__name__,
                                                                                       "detail": str(exc)[:200]})

    async def judge_once(self) -> list[tuple[Experiment, Verdict]]:
        """Flush, then rule on every running experiment; returns the decisions this gateway made."""
        await self.flush()
        decided: list[tuple[Experiment, Verdict]] = []
        for experiment in list(self.resolver.state.experiments.values()):
            if experiment.state != "running":
                continue
            figures = await self.store.figures(experiment.id)
            verdict = judge(figures["control"], figures["candidate"], self.settings.judge)
            if verdict.action == "continue":
                continue
            if await self._decide(experiment, verdict):
                decided.append((experiment, verdict))
        if decided:
            await self.refresh()
        return decided

    async def _decide(self, experiment: Experiment, verdict: Verdict) -> bool:
        state = "promoted" if verdict.action == "promote" else "rolled_back"
        flips = {STABLE: experiment.candidate} if verdict.action == "promote" else {}
        decision: dict[str, Any] = {"action": verdict.action, "reason": verdict.reason, "by": "judge",
                                    "gateway": self._gateway, "evidence": verdict.evidence}
        won = await self.store.decide(experiment.id, state, decision, flips)
        if won:
            self._log.warning("registry: experiment decided", extra={
                "experiment": experiment.id, "model": experiment.model, "action": verdict.action,
                "reason": verdict.reason, "control": experiment.control, "candidate": experiment.candidate,
                "evidence": verdict.evidence})
        return won

    async def keep_judging(self) -> None:
        while True:
            await asyncio.sleep(self.settings.judge.interval_s)
            try:
                await self.judge_once()
            except STORE_ERRORS as exc:
                self._log.warning("registry: experiments not judged this interval", extra={"error": type(exc).__name__})
