"""A live gateway (auth, metering, billing, SLOs) in front of the engine simulator, with two
tenants whose names, keys and models carry HTML, their usage seeded into the rollups, each with a
finalized invoice rated from it (its lines name the models, HTML and all), billing's payment provider
Stripe — localstripe, the Stripe double the billing tests run — and Debian's headless Chromium driven
by Playwright (no browser download)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.config import Settings
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.store.usage import SqlUsageStore
from inferlab.testing import EngineSimulator, localstripe
from inferlab.testing.needs import require

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "dashboards"
INJECTION = '<img src=x onerror="window.__pwned=1">'  # in names: must be shown as text, never run
TENANTS = {"acme": f"Acme {INJECTION}", "globex": "Globex <script>window.__pwned=1</script>"}


@dataclass
class Tenancy:
    tenant: str
    key: str  # a member's key (inference + admin groups: the portal's key pages too)
    key_id: str
    model: str  # a model name only this tenant's usage has
    events: list[UsageEvent] = field(default_factory=list)
    admin_key: str = ""  # a tenant admin's key (may change the payment method)
    invoice_id: str = ""  # its finalized invoice (this month's, rated from ``events``)


@dataclass
class Site:
    url: str
    client: TestClient[Any, Any]
    admin_key: str
    tenants: dict[str, Tenancy]
    stripe_url: str = ""

    async def api(self, key: str, path: str) -> tuple[int, Any]:
        answer = await self.client.get(path, headers={"Authorization": f"Bearer {key}"})
        return answer.status, await (answer.text() if answer.content_type == "text/csv" else answer.json())


def _event(n: int, tenant: str, at: datetime, model: str, key: str, prompt: int, completion: int,
           micros: int, status: EventStatus = EventStatus.SUCCESS) -> UsageEvent:
    return UsageEvent(id=f"web-{tenant}-{n}", time=at, tenant=tenant, user=None, key=key, tier="pro",
                      route="/v1/chat/completions", model=model, model_version=None, replica="r0", hardware=None,
                      prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0,
                      token_source=TokenSource.ENGINE, queue_ms=None, ttft_ms=20.0, duration_ms=40.0,
                      status=status, http_status=200 if status is EventStatus.SUCCESS else 502,
                      price=Decimal(micros).scaleb(-6), hardware_cost=Decimal(micros // 4).scaleb(-6))


@pytest.fixture(scope="session")
def stripe_double() -> Iterator[localstripe.LocalStripe]:
    pytest.importorskip("stripe")
    try:
        localstripe.install()
    except (OSError, subprocess.CalledProcessError) as exc:
        require(False, f"localstripe could not be installed: {exc}")
    with localstripe.running() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: Any, stripe_double: localstripe.LocalStripe) -> AsyncIterator[Site]:
    sim = EngineSimulator()
    await sim.start()
    data_dir = tmp_path_factory.mktemp("web")
    settings = Settings(
        data_dir=data_dir, features={"auth": True}, auth={"pepper": "w" * 32, "bootstrap": False},
        billing={"enabled": True, "jobs": False, "provider": "stripe", "plans": {"payg": [{"flat_fee": "20"}]},
                 "stripe": {"api_key": "sk_test_localstripe", "api_base": stripe_double.url,
                            "max_network_retries": 0}},
        pricing={"models": {"sim-model": {"input_per_million": "2", "output_per_million": "8"}}},
        web={"refresh_s": 1},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}])
    app = await create_app(settings)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        services = client.app[SERVICES].admin
        assert services is not None
        stack = services.auth
        admin_user = await stack.admin.create_user(LOCAL_OPERATOR, "root", "platform-admin", "default")
        admin = await stack.admin.create_key(LOCAL_OPERATOR, name="root", user_id=admin_user.id,
                                             scopes=Scopes(frozenset({"inference", "admin"})))
        tenancies: dict[str, Tenancy] = {}
        now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
        events: list[UsageEvent] = []
        for index, (tenant, name) in enumerate(TENANTS.items()):
            await stack.store.add_tenant(Tenant(tenant, name, datetime.now(UTC)))
            user = await stack.admin.create_user(LOCAL_OPERATOR, f"{tenant}-user {INJECTION}", "member", tenant)
            created = await stack.admin.create_key(LOCAL_OPERATOR, name=f"{tenant}-key {INJECTION}", user_id=user.id,
                                                   scopes=Scopes(frozenset({"inference", "admin"})))
            model = f"{tenant}-model-<b>{index}</b>"
            mine = [_event(n, tenant, now - timedelta(days=n % 3, minutes=n), model if n % 2 else "sim-model",
                           created.key.id, 100 * (index + 1) + n, 40 + n, 1_500_000 + 1000 * n,
                           EventStatus.ERROR if n % 7 == 0 else EventStatus.SUCCESS) for n in range(1, 13)]
            tenancies[tenant] = Tenancy(tenant, created.token, created.key.id, model, mine)
            events += mine
        await SqlUsageStore(stack.database).insert_batch(events)
        billing = client.app[SERVICES].billing
        assert billing is not None
        for tenant, tenancy in tenancies.items():
            boss = await stack.admin.create_user(LOCAL_OPERATOR, f"{tenant}-boss", "tenant-admin", tenant)
            tenancy.admin_key = (await stack.admin.create_key(LOCAL_OPERATOR, name=f"{tenant}-boss-key",
                                                              user_id=boss.id,
                                                              scopes=Scopes(frozenset({"inference", "admin"})))).token
            period = await billing.engine.period_of(tenant, now)
            draft = await billing.engine.draft(tenant, period)
            tenancy.invoice_id = (await billing.engine.finalize(draft, force=True)).id
        yield Site(str(client.make_url("")).rstrip("/"), client, admin.token, tenancies, stripe_double.url)
    finally:
        await client.close()
        await sim.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Any]:
    require(CHROMIUM.is_file(), "Debian's chromium is not installed (./dev setup test installs it)")  # noqa: ASYNC240
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        await browser.close()
