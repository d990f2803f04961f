"""The Python SDK (clients/python, ``inferlab_client``) against a live InferLab: a real gateway
process in front of the engine simulator. Every admin and customer operation of the OpenAPI
documents is called through the typed clients (sync and async), inference goes through the
pre-configured ``openai`` SDK, errors arrive typed, and a test fails when an operation of the
documents is neither exercised here nor declared out of the SDK's scope (``no client: <why>``).

After adding a route: regenerate (``python clients/python/scripts/generate.py``), then call the new
method in ``exercise_sync`` or ``exercise_async`` below."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from inferlab_client import (
    OPERATIONS,
    AsyncInferLab,
    AuthenticationError,
    BadRequestError,
    InferLab,
    NotFoundError,
    PermissionDeniedError,
)

from .harness import ANOMALY_INTERVAL_S, Live

E = TypeVar("E", bound=Exception)
MESSAGES: Any = [{"role": "user", "content": "hello"}]
# Operations that need a system this test does not run; the test asserts their typed error instead.
NEEDS_ELSEWHERE = {
    "post_admin_billing_accounts_tenant_id_payment-method":
        "needs a payment provider (Stripe): tests/integration/billing/test_stripe_payments.py; here the "
        "typed BadRequestError no_payment_provider",
}


def expect(kind: type[E], call: Callable[[], Any]) -> E:
    with pytest.raises(kind) as raised:
        call()
    return raised.value


def exercise_sync(live: Live) -> dict[str, str]:
    """Every admin/customer operation but a few, through the synchronous client; returns the keys made."""
    root = InferLab(live.url, live.root, observer=live.observe)
    admin = root.admin
    assert "sim-model" in str(admin.get_backends())
    admin.get_engines()
    admin.get_slo()
    admin.get_resources()
    # autoscaling is off in this gateway: the report says so, with no pools
    assert admin.get_autoscaler() == {"object": "autoscaler", "enabled": False, "data": []}
    # the anomaly detector is on (harness.live_config); a fresh store has no history to judge: no incident
    anomalies = admin.get_anomalies()
    assert anomalies["object"] == "list" and anomalies["data"] == [] and anomalies["open"] == 0
    assert (anomalies["interval_s"], anomalies["quiet_intervals"]) == (ANOMALY_INTERVAL_S, 4)
    tiers = admin.get_tiers()["data"]
    admin.get_tier(tiers[0]["name"])
    assert admin.set_tier("sdk-tier", {"description": "made by the SDK test", "priority": "high"})["name"] == "sdk-tier"
    admin.delete_tier("sdk-tier")

    for tenant in ("acme", "globex", "initech"):
        assert admin.create_tenant({"id": tenant, "name": tenant.title()})["id"] == tenant
    assert admin.get_tenant("acme")["name"] == "Acme"
    assert admin.update_tenant("acme", {"name": "Acme Inc"})["name"] == "Acme Inc"
    first = admin.list_tenants(limit=2)
    assert first["has_more"] and len(first["data"]) == 2
    every = [t["id"] for t in admin.iter_tenants(limit=1)]  # one page per tenant
    assert {"default", "acme", "globex", "initech"} <= set(every) and len(every) == len(set(every))
    assert admin.suspend_tenant("globex")["status"] == "suspended"
    assert admin.resume_tenant("globex")["status"] == "active"

    alice = admin.create_user({"name": "alice", "tenant_id": "acme"})
    bob = admin.create_user({"name": "bob", "role": "tenant-admin", "tenant_id": "acme"})
    assert admin.get_user(alice["id"])["name"] == "alice"
    assert admin.update_user(bob["id"], {"role": "member"})["role"] == "member"
    assert {u["id"] for u in admin.list_users(tenant_id="acme")["data"]} == {alice["id"], bob["id"]}
    assert sorted(u["id"] for u in admin.iter_users(limit=1, tenant_id="acme")) == sorted([alice["id"], bob["id"]])

    made = admin.create_key({"name": "alice-key", "user_id": alice["id"], "route_groups": ["inference", "admin"]})
    key_id, token = made["id"], made["key"]
    assert admin.get_key(key_id)["id"] == key_id
    spare = admin.create_key({"name": "spare", "user_id": alice["id"]})
    spare_id = spare["id"]
    assert {k["id"] for k in admin.iter_keys(limit=1, user_id=alice["id"])} == {key_id, spare_id}
    assert len(admin.list_keys(user_id=alice["id"])["data"]) == 2
    rotated = admin.rotate_key(spare_id)
    assert rotated["replaces"] == spare_id and rotated["key"].startswith("il-")
    admin.revoke_key(rotated["id"])
    admin.delete_key(spare_id)

    assert admin.set_limit("key", key_id, {"rpm": 1000})["rpm"] == 1000
    assert admin.get_limit("key", key_id)["rpm"] == 1000

    start = datetime.now(UTC) + timedelta(hours=1)
    reservation = admin.create_reservation({"tenant_id": "acme", "pool": "sim-model", "sequences": 1,
                                            "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()})
    assert reservation["id"] in {r["id"] for r in admin.get_reservations(pool="sim-model")["data"]}
    admin.delete_reservation(reservation["id"])

    assert admin.get_registry()["models"]
    version = admin.create_registry_model_version(
        "sim-model", {"version": "v2", "spec": {"backend": "openai", "url": live.engine_url + "/v1"}})
    assert version["version"] == "v2"
    admin.set_registry_model_alias("sim-model", "beta", {"version": "v2"})
    experiment = admin.create_registry_experiment({"model": "sim-model", "candidate": "v2", "weight": 0.1})
    assert admin.get_registry_experiment(experiment["id"])["id"] == experiment["id"]
    admin.update_registry_experiment(experiment["id"], {"weight": 0.2})
    admin.decide_registry_experiment(experiment["id"], {"action": "stop", "reason": "the SDK test is done"})
    admin.delete_registry_model_alias("sim-model", "beta")
    admin.delete_registry_model_version("sim-model", "v2")

    # the customer: inference through the pre-configured openai SDK, then its usage and invoices
    customer = InferLab(live.url + "/v1", token, observer=live.observe)
    reply = customer.openai.chat.completions.create(model="sim-model", messages=MESSAGES, max_tokens=4)
    assert reply.choices[0].message.content
    chunks = list(customer.openai.chat.completions.create(model="sim-model", messages=MESSAGES, max_tokens=4,
                                                          stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "data" in customer.customer.get_usage(group_by="model")
    csv = customer.customer.get_usage(format_="csv")
    assert isinstance(csv, str) and csv.splitlines()[0].count(",") >= 2
    customer.customer.get_usage_forecast()
    assert isinstance(admin.get_usage(format_="csv", tenant="acme"), str)
    assert "data" in admin.get_usage(group_by="tenant")
    admin.get_usage_forecast(tenant="acme")

    assert admin.update_billing_account("acme", {"plan": "pro", "email": "billing@acme.test"})["plan"] == "pro"
    assert admin.get_billing_account("acme")["plan"] == "pro"
    assert admin.create_billing_credit({"tenant": "acme", "amount": "1.00", "reason": "welcome"})["amount"] == "1.00"
    draft = admin.create_billing_drafts({"tenant": "acme", "at": "2026-03-15T00:00:00Z"})
    assert draft["status"] == "draft" and admin.get_billing_invoice(draft["id"])["id"] == draft["id"]
    assert draft["id"] in admin.get_billing_invoice_html(draft["id"])
    done = admin.finalize_billing_invoice(draft["id"])
    assert done["status"] == "finalized"
    assert draft["id"] in {i["id"] for i in admin.list_billing_invoices(tenant="acme")["data"]}
    assert draft["id"] in {i["id"] for i in customer.customer.list_billing_invoices()["data"]}
    assert customer.customer.get_billing_invoice(draft["id"])["total"] == done["total"]
    assert draft["id"] in customer.customer.get_billing_invoice_html(draft["id"])
    assert customer.customer.get_billing_invoice_pdf(draft["id"]).startswith(b"%PDF-")
    assert admin.mark_billing_invoice_paid(draft["id"])["status"] == "paid"
    admin.refund_billing_invoice(draft["id"], {"amount": "1.00", "kind": "credit", "reason": "goodwill"})
    april = admin.finalize_billing_invoice(admin.create_billing_drafts({"tenant": "acme", "at": "2026-04-15T00:00:00Z"})["id"])
    assert admin.void_billing_invoice(april["id"])["status"] == "void"
    may = admin.finalize_billing_invoice(admin.create_billing_drafts({"tenant": "acme", "at": "2026-05-15T00:00:00Z"})["id"])
    assert admin.mark_billing_invoice_uncollectible(may["id"])["status"] == "uncollectible"
    admin.close_billing()
    assert "attempted" in admin.collect_billing()
    assert admin.create_billing_plan_version("pro", {"effective": "2027-01-01T00:00:00Z", "flat_fee": "12"})
    assert "pro" in {p["name"] for p in admin.get_billing_plans()["data"]}
    admin.get_billing_reconciliation()
    assert "data" in admin.get_billing_margins(tenant="acme")
    assert "invoice.finalize" in {e["action"] for e in admin.list_billing_log(tenant="acme")["data"]}
    error = expect(BadRequestError, lambda: admin.set_billing_account_payment_method("acme", {"payment_method": "pm_x"}))
    assert error.code == "no_payment_provider"

    assert [e["action"] for e in admin.iter_audit(action="tenant.create", limit=1)].count("tenant.create") == 3
    assert admin.list_audit(limit=1)["has_more"]

    # typed errors, each from a real answer
    assert expect(NotFoundError, lambda: admin.get_user("u_missing")).type == "not_found_error"
    bad = expect(BadRequestError, lambda: admin.create_user({"name": ""}))
    assert bad.status == 400 and bad.param == "name"
    assert expect(PermissionDeniedError, customer.admin.list_tenants).status == 403
    own = {k["id"] for k in customer.admin.list_keys()["data"]}  # a member sees its own keys only
    assert key_id in own and own == {k["id"] for k in admin.list_keys(user_id=alice["id"])["data"]}
    with InferLab(live.url, "il-wrong") as stranger:
        assert expect(AuthenticationError, stranger.admin.list_keys).status == 401

    admin.delete_user(bob["id"])
    admin.delete_tenant("initech")
    for client in (root, customer):
        client.close()
    return {"alice": alice["id"], "key": key_id, "token": token}


async def exercise_async(live: Live, made: dict[str, str]) -> None:
    async with AsyncInferLab(live.url, live.root, observer=live.observe) as root:
        users = [u async for u in root.admin.iter_users(limit=1, tenant_id="acme")]
        assert made["alice"] in {u["id"] for u in users}
        assert (await root.admin.get_tenant("globex"))["id"] == "globex"
        assert (await root.admin.get_key(made["key"]))["id"] == made["key"]
        with pytest.raises(NotFoundError):
            await root.admin.get_tenant("nobody")
        scaler = await root.admin.get_autoscaler()
        assert scaler["enabled"] is False and scaler["data"] == []
        open_only = await root.admin.get_anomalies(state="open")
        assert open_only["object"] == "list" and open_only["open"] == 0 and open_only["data"] == []
    async with AsyncInferLab(live.url, made["token"], observer=live.observe) as customer:
        stream = await customer.openai.chat.completions.create(model="sim-model", messages=MESSAGES, max_tokens=4,
                                                               stream=True)
        assert [chunk async for chunk in stream]
        assert "data" in await customer.customer.get_usage()
        invoices = await customer.customer.list_billing_invoices()
        assert invoices["data"] and all(i["tenant"] == "acme" for i in invoices["data"])


def in_scope() -> dict[str, str]:
    return {op.operation_id: op.method_name for op in OPERATIONS if op.scope in ("admin", "customer")}


async def test_every_admin_and_customer_operation_through_the_sdk(live: Live) -> None:
    made = await asyncio.to_thread(exercise_sync, live)
    await exercise_async(live, made)
    answered = {event.operation_id for event in live.events if event.status is not None and event.status < 300}
    failed = {event.operation_id for event in live.events if event.status is not None and event.status >= 300}
    assert failed - set(NEEDS_ELSEWHERE) <= {"get_admin_users_user_id", "post_admin_users", "get_admin_tenants",
                                              "get_admin_keys", "get_admin_tenants_tenant_id"}  # the typed-error calls
    missing = {op: name for op, name in in_scope().items() if op not in answered and op not in NEEDS_ELSEWHERE}
    assert not missing, (f"operations of the OpenAPI documents no live test calls: {missing}; call them in "
                         "exercise_sync/exercise_async (tests/integration/sdk/test_sdk_live.py)")
    assert all(event.attempts == 1 for event in live.events)  # nothing here needed a retry


def test_every_operation_is_in_scope_or_says_why_not() -> None:
    """The generated table classifies every operation of both documents; the reasons are words."""
    assert {op.scope.split(":")[0] for op in OPERATIONS} <= {"admin", "customer", "no client"}
    for op in OPERATIONS:
        if op.scope.startswith("no client"):
            assert len(op.scope) > len("no client: ") + 10 and not op.method_name, op
        else:
            assert op.method_name.isidentifier(), op
    assert len({(op.scope, op.method_name) for op in OPERATIONS if op.method_name}) == len(in_scope())
    assert all(op.document == "admin" for op in OPERATIONS if op.scope == "admin")
