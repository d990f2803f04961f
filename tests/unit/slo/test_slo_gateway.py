"""SLOs through a real gateway in front of the engine simulator: streamed requests' TTFT and TPOT
and every answer's availability land in ``GET /admin/slo`` (platform admins only), in the
Prometheus counters the alert rules read, and in ``inferlab slo report``'s table."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rich.console import Console

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.slo.cli import render
from inferlab.testing import EngineSimulator, SimulatorScript

PEPPER = "pepper-slo-0123456789abcdef01"
Client = TestClient[Any, Any]
TIERS = [{"name": "strict", "priority": "normal", "slo": {"ttft_p95_ms": 150, "tpot_p95_ms": 20, "availability": 0.99}}]


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=5, token_delay_s=0.005)


async def key(client: Client, tenant: str, tier: str | None, role: str = "member",
              groups: frozenset[str] = frozenset({"inference"})) -> str:
    admin = client.app[SERVICES].admin
    assert admin is not None
    if tier is not None:
        await admin.tenant_admin.create(LOCAL_OPERATOR, tenant, tier=tier)
    user = await admin.auth.admin.create_user(LOCAL_OPERATOR, f"{tenant}-{role}", role, tenant)  # type: ignore[arg-type]
    return (await admin.auth.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id, scopes=Scopes(groups))).token


async def test_slo_attainment_is_measured_reported_and_exported(sim: EngineSimulator, tmp_path: Path) -> None:
    assert sim.base_url is not None
    settings = Settings(data_dir=tmp_path, features={"auth": True}, auth={"pepper": PEPPER, "bootstrap": False},
                        tenants={"tiers": TIERS}, slo={"slot_s": 1, "windows_s": [60, 600]},
                        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}])
    async with TestClient(TestServer(await create_app(settings))) as client:
        user = await key(client, "acme", "strict")
        root = await key(client, "default", None, "platform-admin", frozenset({"inference", "admin"}))
        body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        for stream in (True, True, True, False):
            response = await client.post("/v1/chat/completions", json={**body, "stream": stream},
                                         headers={"Authorization": f"Bearer {user}"})
            assert response.status == 200
            await response.read()
        sim.script.update({"fail_status": 500, "fail_next": 1})  # one 5xx: the engine failed, no replica left
        response = await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {user}"})
        assert response.status == 502
        sim.script.update({"token_delay_s": 0.05})  # one stream too slow per token
        response = await client.post("/v1/chat/completions", json={**body, "stream": True},
                                     headers={"Authorization": f"Bearer {user}"})
        await response.read()

        assert (await client.get("/admin/slo", headers={"Authorization": f"Bearer {user}"})).status == 403
        response = await client.get("/admin/slo", headers={"Authorization": f"Bearer {root}"})
        assert response.status == 200
        report = await response.json()
        assert report["windows_s"] == [60, 600]
        [row] = [row for row in report["data"] if row["tier"] == "strict"]
        assert row["model"] == "sim-model" and row["targets"]["ttft_p95_ms"] == 150
        window = row["windows"][0]
        assert window["ttft"]["requests"] == 4 and window["ttft"]["good"] == 4  # streams only
        assert window["tpot"]["requests"] == 4 and window["tpot"]["good"] == 3  # the slow one
        assert window["availability"]["requests"] == 6 and window["availability"]["good"] == 5
        assert window["availability"]["burn_rate"] == pytest.approx((1 / 6) / 0.01)
        assert window["tpot"]["met"] is False and window["ttft"]["met"] is True

        metrics = await (await client.get("/metrics")).text()
        counted = dict(re.findall(r'inferlab_slo_requests_total\{model="sim-model",outcome="(\w+)",slo="availability",'
                                  r'tier="strict"\} (\S+)', metrics))
        assert counted == {"good": "5.0", "bad": "1.0"}
        assert 'inferlab_slo_objective{slo="availability",tier="strict"} 0.99' in metrics
        assert 'inferlab_slo_objective{slo="ttft",tier="strict"} 0.95' in metrics

        out = io.StringIO()
        render(report, Console(file=out, width=200))
        table = out.getvalue()
        assert "strict" in table and "MISSED" in table and "burn" in table
