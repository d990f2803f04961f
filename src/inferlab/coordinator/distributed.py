"""``DistributedCoordinator``: deployment specs turned into running engine groups by providers.

It owns the providers (opened before the first group starts, closed after the last stops) and the
groups (one per replica of each spec), and reports them all for ``GET /admin/engines``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from inferlab.coordinator.group import EngineGroup, GroupObserver, GroupTiming
from inferlab.coordinator.provider import EngineProvider
from inferlab.coordinator.spec import DeploymentSpec, GroupPlan


def group_names(spec: DeploymentSpec) -> list[str]:
    return [spec.name] if spec.replicas == 1 else [f"{spec.name}-{i}" for i in range(spec.replicas)]


class DistributedCoordinator:
    def __init__(self, providers: Mapping[str, EngineProvider], session: aiohttp.ClientSession, *,
                 timing: GroupTiming, observer: GroupObserver, logger: logging.Logger) -> None:
        self.providers = dict(providers)
        self.groups: list[EngineGroup] = []
        self._session = session
        self._timing = timing
        self._observer = observer
        self._log = logger
        self._opened: list[EngineProvider] = []

    def deploy(self, spec: DeploymentSpec, provider: str, plan_for: Callable[[str], GroupPlan]) -> list[EngineGroup]:
        """One group per replica of ``spec``, not started yet; ``plan_for(name)`` gives each its command lines."""
        if provider not in self.providers:
            raise ValueError(f"no engine provider {provider!r}; configured: {', '.join(self.providers)}")
        groups = [EngineGroup(plan_for(name), self.providers[provider], self._session, timing=self._timing,
                              observer=self._observer, logger=self._log) for name in group_names(spec)]
        self.groups += groups
        return groups

    async def start(self) -> None:
        for provider in {id(g.provider): g.provider for g in self.groups}.values():
            await provider.open()
            self._opened.append(provider)
        for group in self.groups:
            group.start()

    async def stop(self) -> None:
        await asyncio.gather(*(group.stop() for group in self.groups))
        for provider in reversed(self._opened):
            await provider.close()
        self._opened.clear()

    def snapshot(self) -> dict[str, Any]:
        used = {g.provider.name: g.provider for g in self.groups}
        return {
            "object": "list",
            "providers": [{"name": name, "nodes": provider.alive_nodes() if provider in self._opened else []}
                          for name, provider in used.items()],
            "data": [group.snapshot() for group in self.groups],
        }
