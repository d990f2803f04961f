"""The delegation ceiling extended to the tier: a tenant admin creates no key for a model outside
its tenant's tier, and stores no limit above the tier's; platform admins are not held by it."""

from __future__ import annotations

from .conftest import Gateway


def key_id(token: str) -> str:
    return token.split("-")[1]


async def test_a_tenant_admin_cannot_scope_a_key_to_a_model_outside_the_tier(gateway: Gateway) -> None:
    await gateway.tenant("basic-co", "basic")  # models: sim-model
    admin = await gateway.key("basic-co", role="tenant-admin", groups=("inference", "admin"))
    before = len((await gateway.call(gateway.root, "GET", "/admin/keys"))[1]["data"])
    for models in (["pro-model"], ["sim-model", "pro-model"], ["no-such-model"]):
        status, body, headers = await gateway.call(admin, "POST", "/admin/keys", {"name": "k", "models": models})
        assert status == 403, (models, body)
        assert (body["error"]["code"], body["error"]["param"]) == ("model_not_in_tier", "models")
        assert "basic tier" in body["error"]["message"] and headers["x-inferlab-tier"] == "basic"
    assert len((await gateway.call(gateway.root, "GET", "/admin/keys"))[1]["data"]) == before  # nothing created

    status, created, _ = await gateway.call(admin, "POST", "/admin/keys", {"name": "k", "models": ["sim-model"]})
    assert status == 201 and created["models"] == ["sim-model"]
    status, created, _ = await gateway.call(admin, "POST", "/admin/keys", {"name": "k"})
    assert status == 201 and created["models"] is None  # every model: the tier still decides per request
    assert (await gateway.call(created["key"], "POST", "/v1/chat/completions",
                               {"model": "pro-model", "messages": [{"role": "user", "content": "hi"}]}))[0] == 403

    # a platform admin prepares an upgrade: not held by the tenant's tier
    _, user, _ = await gateway.call(gateway.root, "POST", "/admin/users", {"name": "later", "tenant_id": "basic-co"})
    status, _, _ = await gateway.call(gateway.root, "POST", "/admin/keys",
                                      {"name": "k", "user_id": user["id"], "models": ["pro-model"]})
    assert status == 201


async def test_a_tenant_admin_stores_no_limit_above_the_tier(gateway: Gateway) -> None:
    await gateway.tenant("metered-co", "metered", key_limits={"tpm": 1000})  # tenant rpm 2; per key tpm 1000
    admin = await gateway.key("metered-co", role="tenant-admin", groups=("inference", "admin"))
    _, user, _ = await gateway.call(admin, "POST", "/admin/users", {"name": "dev"})
    _, key, _ = await gateway.call(admin, "POST", "/admin/keys", {"name": "k", "user_id": user["id"]})
    refused = [
        ("tenant", "metered-co", {"rpm": 3}, "rpm"),
        ("user", user["id"], {"rpm": 5}, "rpm"),
        ("key", key["id"], {"rpm": 100}, "rpm"),
        ("key", key["id"], {"tpm": 2000}, "tpm"),
        ("key", key_id(admin), {"tpm": 1001}, "tpm"),
    ]
    for subject, subject_id, limits, field in refused:
        status, body, _ = await gateway.call(admin, "PUT", f"/admin/limits/{subject}/{subject_id}", limits)
        assert status == 403, (subject, limits, body)
        assert (body["error"]["code"], body["error"]["param"]) == ("limit_above_own", field)
        status, stored, _ = await gateway.call(gateway.root, "GET", f"/admin/limits/{subject}/{subject_id}")
        assert status == 200 and stored[field] is None  # nothing stored
    # at the tier's limits: allowed (a field left null must leave the subject held at most as tightly)
    for subject, subject_id, limits in [("key", key["id"], {"rpm": 1, "tpm": 1000}),
                                        ("user", user["id"], {"rpm": 2, "tpm": 1000}),
                                        ("tenant", "metered-co", {"rpm": 2, "tpm": 1000})]:
        status, body, _ = await gateway.call(admin, "PUT", f"/admin/limits/{subject}/{subject_id}", limits)
        assert status == 200, (subject, body)

    # the platform admin raises the tenant's own limit: the tenant admin may then grant up to it
    assert (await gateway.call(gateway.root, "PUT", "/admin/limits/tenant/metered-co", {"rpm": 50}))[0] == 200
    assert (await gateway.call(admin, "PUT", f"/admin/limits/user/{user['id']}", {"rpm": 50, "tpm": 10}))[0] == 200
    assert (await gateway.call(admin, "PUT", f"/admin/limits/user/{user['id']}", {"rpm": 51, "tpm": 10}))[0] == 403

    # on a tier without limits (the default tenant's enterprise) a tenant admin is held by nothing here
    free_admin = await gateway.key("default", role="tenant-admin", groups=("inference", "admin"))
    assert (await gateway.call(free_admin, "PUT", f"/admin/limits/key/{key_id(free_admin)}", {"rpm": 10_000}))[0] == 200
