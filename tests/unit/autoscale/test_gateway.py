"""The autoscaler in a gateway built from settings: a remote pool scaled through the Kubernetes scale
subresource (``KubeScaleSimulator``), ``GET /admin/autoscaler`` and its metrics; off by default;
settings that cannot work are refused at load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from inferlab.app import SERVICES, create_app
from inferlab.autoscale.schedule import bounds_at, window
from inferlab.config import Settings
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.kube_scale import KubeScaleSimulator


@pytest.fixture
async def kube() -> AsyncIterator[KubeScaleSimulator]:
    async with KubeScaleSimulator(token="k8s-token") as api:
        api.add("lab", "sim-engines", replicas=1)
        yield api


def settings(tmp_path: Path, sim_url: str, kube_url: str | None, **autoscale: Any) -> Settings:
    pools = {} if kube_url is None else {"sim-model": {
        "min_replicas": 1, "max_replicas": 5, "target": 1, "stable_window_s": 2, "panic_window_s": 0.4,
        "scale_down_delay_s": 0.2, "actuator": "kubernetes",
        "kubernetes": {"api_url": kube_url, "namespace": "lab", "deployment": "sim-engines", "token": "k8s-token"}}}
    return Settings(data_dir=tmp_path, models=[{"name": "sim-model", "backend": "openai", "url": f"{sim_url}/v1"}],
                    autoscale={"enabled": kube_url is not None, "interval_s": 0.1, "pools": pools, **autoscale})


async def test_load_scales_the_deployment_and_the_report_shows_why(tmp_path: Path, kube: KubeScaleSimulator) -> None:
    async with EngineSimulator(SimulatorScript(token_delay_s=0.05, completion_tokens=12)) as sim:
        assert sim.base_url is not None and kube.base_url is not None
        app = await create_app(settings(tmp_path, sim.base_url, kube.base_url))
        async with TestClient(TestServer(app)) as client:
            body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}
            calls = [asyncio.create_task(client.post("/v1/chat/completions", json=body)) for _ in range(4)]
            for _ in range(50):
                if kube.deployments[("lab", "sim-engines")].spec > 1:
                    break
                await asyncio.sleep(0.05)
            for call in calls:
                assert (await call).status == 200
            assert kube.deployments[("lab", "sim-engines")].spec >= 3  # 4 in flight, target 1 each
            report = await (await client.get("/admin/autoscaler")).json()
            pool = report["data"][0]
            assert report["enabled"] and report["mode"] == "active"
            assert pool["model"] == "sim-model" and pool["actuator"] == "kubernetes"
            up = next(d for d in pool["decisions"] if d["direction"] == "up")
            assert up["inputs"]["in_flight"] >= 1 and up["reason"] in ("panic", "stable", "maximum")
            metrics = await (await client.get("/metrics")).text()
            assert 'inferlab_autoscaler_decisions_total{direction="up",model="sim-model"}' in metrics
            assert 'inferlab_autoscaler_desired_replicas{model="sim-model"}' in metrics
            assert client.app[SERVICES].autoscaler is not None


async def test_off_by_default_the_route_says_so(tmp_path: Path) -> None:
    async with EngineSimulator() as sim:
        assert sim.base_url is not None
        app = await create_app(settings(tmp_path, sim.base_url, None))
        async with TestClient(TestServer(app)) as client:
            assert await (await client.get("/admin/autoscaler")).json() == {"object": "autoscaler", "enabled": False,
                                                                             "data": []}
            openapi = await (await client.get("/admin/openapi.json")).json()
            assert "/admin/autoscaler" in openapi["paths"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"pools": {"nope": {}}}, "not configured"),
    ({"pools": {"sim-model": {"min_replicas": 3, "max_replicas": 2}}}, "min_replicas"),
    ({"pools": {"sim-model": {"actuator": "kubernetes"}}}, "kubernetes"),
    ({"pools": {"sim-model": {"schedule": [{"start": "25:00"}]}}}, "HH:MM"),
])
def test_settings_that_cannot_work_are_refused(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(data_dir=tmp_path, models=[{"name": "sim-model", "backend": "openai", "url": "http://127.0.0.1:9/v1"}],
                 autoscale={"enabled": True, **changes})


def test_scheduled_bounds_follow_the_week_in_utc() -> None:
    office = window(["mon", "tue", "wed", "thu", "fri"], "08:00", "19:00", min_replicas=2, max_replicas=8)
    night = window(["fri"], "22:00", "06:00", max_replicas=1)  # crosses midnight into Saturday
    monday_10 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert bounds_at(monday_10, [office, night], (0, 4)) == (2, 8)
    assert bounds_at(datetime(2026, 12, 7, 19, 0, tzinfo=UTC), [office, night], (0, 4)) == (0, 4)
    assert bounds_at(datetime(2026, 12, 12, 3, 0, tzinfo=UTC), [office, night], (0, 4)) == (0, 1)  # Saturday 03:00
    assert bounds_at(datetime(2026, 12, 12, 7, 0, tzinfo=UTC), [office, night], (0, 4)) == (0, 4)
