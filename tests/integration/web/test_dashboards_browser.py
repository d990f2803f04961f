"""Every dashboard page in real headless Chromium: sign-in with a key, every page rendered (no
script error, no CSP violation), its links followed, its forms validated, its htmx swaps done, a
screenshot of each in test-artifacts/dashboards/; a generated matrix over the portal's pages and two
tenants proving neither sees the other's data; names carrying HTML shown as text; CSRF refused;
members refused the admin pages; the page's totals the API's and the CSV's."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect

from .conftest import ARTIFACTS, INJECTION, TENANTS, Site

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

ADMIN_PAGES = {"": "Overview", "models": "Models and rollouts", "pools": "Pools and replicas", "tenants": "Tenants",
               "users": "Users and keys", "limits": "Limits and quotas", "usage": "Usage, cost and margin",
               "anomalies": "Anomalies", "audit": "Audit log"}
PORTAL_PAGES = {"/ui/": "Usage", "/ui/spend": "Spend and quotas", "/ui/keys": "API keys",
                "/ui/billing": "Invoices and payment"}


class Browsing:
    """A signed-in browser context; any script error, CSP violation or dialog fails the test."""

    def __init__(self, context: Any, page: Any, site: Site) -> None:
        self.context, self.page, self.site = context, page, site
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda message: self.problems.append(f"console: {message.text}")
                if message.type == "error" else None)
        page.on("dialog", self._dialog)

    async def _dialog(self, dialog: Any) -> None:
        if dialog.type != "confirm":  # hx-confirm on revoke is ours; anything else is injected
            self.problems.append(f"dialog: {dialog.message}")
        await dialog.accept()

    async def open(self, path: str, *, expect: int = 200) -> Any:
        response = await self.page.goto(self.site.url + path)
        assert response is not None and response.status == expect, (path, response and response.status)
        return response

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def clean(self) -> None:
        assert self.problems == [], self.problems


async def sign_in(browser: Any, site: Site, key: str) -> Browsing:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    browsing = Browsing(context, page, site)
    await browsing.open("/ui/keys")  # not signed in: sent to the sign-in form, which comes back here
    assert page.url.startswith(site.url + "/ui/login?next=")
    await page.fill("#credential", key)
    await page.click("form.login button[type=submit]")
    await page.wait_for_url(site.url + "/ui/keys")
    return browsing


@pytest_asyncio.fixture(loop_scope="module")
async def admin(site: Site, chromium: Any) -> AsyncIterator[Browsing]:
    browsing = await sign_in(chromium, site, site.admin_key)
    yield browsing
    await browsing.context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def acme(site: Site, chromium: Any) -> AsyncIterator[Browsing]:
    browsing = await sign_in(chromium, site, site.tenants["acme"].key)
    yield browsing
    await browsing.context.close()


async def test_every_admin_page_renders_through_its_nav_link(admin: Browsing) -> None:
    page = admin.page
    await admin.open("/ui/admin/")
    for slug, title in ADMIN_PAGES.items():
        link = page.locator(f'nav a[href="/ui/admin/{slug}"]')
        await link.click()
        await page.wait_for_url(admin.site.url + f"/ui/admin/{slug}")
        assert await page.locator("h1").inner_text() == title
        assert await page.locator(f'nav a[href="/ui/admin/{slug}"]').get_attribute("aria-current") == "page"
        await page.wait_for_selector("body[data-ready='1']")
        await admin.shot(f"admin-{slug or 'overview'}")
    admin.clean()


async def test_the_overview_charts_traffic_and_its_replicas_panel_refreshes_by_htmx(admin: Browsing) -> None:
    page = admin.page
    await admin.open("/ui/admin/")
    assert await page.locator("#total-requests").inner_text() == "24"  # 12 events a tenant, seeded
    assert await page.locator("#total-errors").inner_text() == "2"  # every 7th event failed
    await page.wait_for_selector(".chart .uplot canvas")  # uPlot drew from the data attribute
    stamp = page.locator("#pools-panel .stamp")
    await stamp.wait_for()
    first = await stamp.inner_text()
    await page.evaluate("window.__still_here = 1")
    await expect(stamp).not_to_have_text(first, timeout=5000)  # swapped in place (web.refresh_s is 1)
    assert await page.evaluate("window.__still_here") == 1
    assert "sim-model" in await page.locator("#pools-panel").inner_text()
    await admin.shot("admin-overview-refreshed")
    admin.clean()


async def test_the_autoscaler_and_anomaly_pages_say_when_they_are_off(admin: Browsing) -> None:
    await admin.open("/ui/admin/pools")
    assert await admin.page.locator("#autoscaler-off").inner_text() == "Autoscaler off."
    await admin.open("/ui/admin/anomalies")
    assert await admin.page.locator("#anomalies-off").inner_text() == "Anomaly detection off."
    admin.clean()


async def test_names_carrying_html_are_shown_as_text(admin: Browsing, site: Site) -> None:
    page = admin.page
    for path, needle in [("/ui/admin/tenants", TENANTS["acme"]), ("/ui/admin/tenants", TENANTS["globex"]),
                         ("/ui/admin/users", f"acme-key {INJECTION}"), ("/ui/admin/users", f"acme-user {INJECTION}"),
                         ("/ui/admin/usage", site.tenants["acme"].model)]:
        await admin.open(path)
        assert needle in await page.locator("main").inner_text(), (path, needle)
        assert await page.locator("main img, main script, main b").count() == 0, path
        assert await page.evaluate("window.__pwned === undefined"), path
    await admin.shot("admin-escaped-names")
    admin.clean()


async def test_the_admin_usage_page_is_the_admin_api_and_its_csv(admin: Browsing, site: Site) -> None:
    page = admin.page
    await admin.open("/ui/admin/usage")
    status, body = await site.api(site.admin_key, "/admin/usage")
    assert status == 200
    totals = body["totals"]
    assert await page.locator("#total-requests").inner_text() == f"{totals['requests']:,}"
    assert await page.locator("#total-tokens").inner_text() == f"{totals['total_tokens']:,}"
    async with page.expect_download() as waiting:
        await page.click("#csv")
    download = await waiting.value
    rows = list(csv.DictReader(io.StringIO((await download.path()).read_text())))
    assert sum(int(r["total_tokens"]) for r in rows) == totals["total_tokens"]
    assert {r["tenant"] for r in rows} == set(TENANTS)
    admin.clean()


async def test_the_portal_usage_is_the_api_and_the_csv(acme: Browsing, site: Site) -> None:
    page, tenancy = acme.page, site.tenants["acme"]
    await acme.open("/ui/")
    status, body = await site.api(tenancy.key, "/v1/usage")
    assert status == 200
    totals = body["totals"]
    assert await page.locator("#total-requests").inner_text() == f"{totals['requests']:,}"
    assert await page.locator("#total-tokens").inner_text() == f"{totals['total_tokens']:,}"
    assert totals["requests"] == sum(1 for e in tenancy.events if e.time.date().isoformat() >= body["start"])
    await page.wait_for_selector(".chart .uplot canvas")
    async with page.expect_download() as waiting:
        await page.click("#csv")
    text = (await (await waiting.value).path()).read_text()
    _, api_csv = await site.api(tenancy.key, f"/v1/usage?format=csv&group_by=day,model,key&start={body['start']}"
                                             f"&end={body['end']}")
    assert text == api_csv  # the export is the API's, byte for byte
    await acme.shot("portal-usage")
    acme.clean()


async def test_the_usage_filters_swap_the_report_by_htmx_and_validate(acme: Browsing, site: Site) -> None:
    page = acme.page
    await acme.open("/ui/")
    await page.evaluate("window.__still_here = 1")
    model = site.tenants["acme"].model
    await page.fill("input[name=model]", model)
    await page.click(".filters button[type=submit]")
    await page.wait_for_url(re.compile(r".*model=.*"))
    await expect(page.locator("table.by-model tbody tr")).to_have_count(1)
    assert await page.evaluate("window.__still_here") == 1  # swapped, not reloaded
    assert model in await page.locator("table.by-model").inner_text()
    own = [e for e in site.tenants["acme"].events if e.model == model]
    assert await page.locator("#total-requests").inner_text() == str(len(own))
    await page.fill("input[name=start]", "2026-05-10")
    await page.fill("input[name=end]", "2026-05-01")
    await page.click(".filters button[type=submit]")
    await page.wait_for_selector("#report .error")
    assert "end is before start" in await page.locator("#report .error").inner_text()
    await acme.shot("portal-usage-invalid-range")
    acme.clean()


async def test_keys_are_created_rotated_and_revoked_in_place(acme: Browsing, site: Site) -> None:
    page = acme.page
    await acme.open("/ui/keys")
    await page.click("form.new-key button[type=submit]")  # empty name: the browser refuses to send it
    assert await page.evaluate("document.querySelector('form.new-key input[name=name]').validity.valueMissing")
    name = "ci <i>key</i>"
    await page.fill("form.new-key input[name=name]", name)
    await page.click("form.new-key button[type=submit]")
    await expect(page.locator("#keys")).to_contain_text(name)
    secret = await page.locator("#new-secret").inner_text()
    assert secret.startswith("il-")
    assert await page.input_value("form.new-key input[name=name]") == ""  # ready for the next key
    assert await page.locator("#keys i").count() == 0  # the name is text
    status, _ = await site.api(secret, "/v1/models")
    assert status == 200  # the new key works at once
    row = page.locator("tr", has_text=name)
    key_id = await row.get_attribute("data-key")
    await row.locator("button.rotate").click()
    await expect(page.locator("#new-secret")).not_to_have_text(secret)
    rotated = await page.locator("#new-secret").inner_text()
    assert (await site.api(rotated, "/v1/models"))[0] == 200
    assert (await site.api(secret, "/v1/models"))[0] == 401
    await expect(page.locator(f'tr[data-key="{key_id}"]')).to_contain_text("revoked")  # rotation: a new id
    key_id = await page.locator("tr", has_text=name).filter(has_text="active").get_attribute("data-key")
    await page.locator(f'tr[data-key="{key_id}"] button.revoke').click()
    await expect(page.locator(f'tr[data-key="{key_id}"]')).to_contain_text("revoked")
    assert (await site.api(rotated, "/v1/models"))[0] == 401
    await acme.shot("portal-keys")
    acme.clean()


async def test_spend_and_billing_pages(acme: Browsing, site: Site) -> None:
    await acme.open("/ui/spend")
    status, forecast = await site.api(site.tenants["acme"].key, "/v1/usage/forecast")
    assert status == 200
    assert await acme.page.locator("#tokens-used").inner_text() == f"{forecast['tokens']['used']:,}"
    await acme.shot("portal-spend")
    await acme.open("/ui/billing")
    assert "Plan" in await acme.page.locator("table.account").inner_text()
    await acme.shot("portal-billing")
    acme.clean()


async def test_a_member_is_refused_the_admin_pages(acme: Browsing) -> None:
    assert await acme.page.locator('nav a[href^="/ui/admin/"]').count() == 0
    for slug in ADMIN_PAGES:
        response = await acme.page.goto(acme.site.url + f"/ui/admin/{slug}")
        assert response is not None and response.status == 403, slug
        assert (await response.json())["error"]["code"] == "insufficient_role"


async def test_csrf_is_refused(acme: Browsing, site: Site) -> None:
    request = acme.context.request  # carries the session cookie, as a forged cross-site form would
    answer = await request.post(site.url + "/ui/keys", form={"name": "forged"})
    assert answer.status == 403 and (await answer.json())["error"]["code"] == "csrf_failed"
    answer = await request.post(site.url + "/ui/keys", form={"name": "forged", "csrf_token": "x" * 43})
    assert answer.status == 403
    answer = await request.post(site.url + "/ui/keys", form={"name": "forged"}, headers={"X-CSRF-Token": "nope"})
    assert answer.status == 403
    answer = await request.post(site.url + "/ui/login", form={"credential": site.admin_key, "csrf_token": "guess"})
    assert answer.status == 403  # the login form's double submit: no cookie, no session
    _, keys = await site.api(site.tenants["acme"].key, "/admin/keys")
    assert "forged" not in {k["name"] for k in keys["data"]}


async def test_the_session_cookie_and_the_headers(acme: Browsing, site: Site) -> None:
    [cookie] = [c for c in await acme.context.cookies() if c["name"] == "inferlab_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert site.tenants["acme"].key not in cookie["value"]
    assert site.tenants["acme"].key.split("_")[-1] not in cookie["value"]
    response = await acme.open("/ui/")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


MATRIX = [(page, viewer) for page in PORTAL_PAGES for viewer in TENANTS]


@pytest.mark.parametrize(("path", "viewer"), MATRIX, ids=[f"{p}-{v}" for p, v in MATRIX])
async def test_a_tenant_never_sees_another_tenants_data(site: Site, chromium: Any, path: str, viewer: str) -> None:
    browsing = await sign_in(chromium, site, site.tenants[viewer].key)
    try:
        await browsing.open(path)
        text = await browsing.page.locator("body").inner_text()
        html = await browsing.page.content()
        for other, tenancy in site.tenants.items():
            markers = (tenancy.model, tenancy.key_id, TENANTS[other], f"{other}-key", f"{other}-user")
            for marker in markers:
                if other == viewer:
                    continue
                assert marker not in text and marker not in html, (path, viewer, marker)
        if path == "/ui/":  # its own data is there
            assert site.tenants[viewer].model in text and site.tenants[viewer].key_id in text
        if path == "/ui/keys":
            assert site.tenants[viewer].key_id in text
        await browsing.shot(f"matrix{path.replace('/', '-')}-{viewer}")
        browsing.clean()
    finally:
        await browsing.context.close()


async def test_a_revoked_key_ends_its_sessions(site: Site, chromium: Any) -> None:
    stack_key = site.tenants["globex"]
    browsing = await sign_in(chromium, site, stack_key.key)
    try:
        await browsing.open("/ui/")
        answer = await site.client.post(f"/admin/keys/{stack_key.key_id}/revoke",
                                        headers={"Authorization": f"Bearer {site.admin_key}"})
        assert answer.status == 200, await answer.text()
        await browsing.page.goto(site.url + "/ui/")
        await browsing.page.wait_for_url(re.compile(r".*/ui/login\?next=.*"))
    finally:
        await browsing.context.close()
