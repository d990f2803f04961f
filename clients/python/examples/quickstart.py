"""Inference through the pre-configured openai SDK, then the admin API: a tenant, a user, a key.

    INFERLAB_URL=http://127.0.0.1:8000 INFERLAB_KEY=il-... python clients/python/examples/quickstart.py
"""

from __future__ import annotations

import os

from inferlab_client import InferLab, NotFoundError, QuotaExhaustedError, RateLimitError
from inferlab_client.types import KeyIn


def onboard(client: InferLab, tenant: str, user_name: str) -> str:
    """A tenant with one member and an inference key for them; returns the key's secret."""
    try:
        client.admin.get_tenant(tenant)
    except NotFoundError:
        client.admin.create_tenant({"id": tenant, "name": tenant.title()})
    user = client.admin.create_user({"name": user_name, "tenant_id": tenant})
    body: KeyIn = {"name": f"{user_name}-key", "user_id": user["id"], "route_groups": ["inference"]}
    created = client.admin.create_key(body)
    secret: str = created["key"]
    return secret


def main() -> None:
    url, key = os.environ.get("INFERLAB_URL", "http://127.0.0.1:8000"), os.environ["INFERLAB_KEY"]
    with InferLab(url, key) as client:
        reply = client.openai.chat.completions.create(
            model="smollm2-135m", messages=[{"role": "user", "content": "Say hello"}], max_tokens=16)
        print(reply.choices[0].message.content)
        for chunk in client.openai.chat.completions.create(
                model="smollm2-135m", messages=[{"role": "user", "content": "Count to 3"}], stream=True):
            print(chunk.choices[0].delta.content or "" if chunk.choices else "", end="", flush=True)
        print()
        secret = onboard(client, "acme", "alice")
        print("alice's key:", secret[:8] + "…")
        for user in client.admin.iter_users(tenant_id="acme"):  # every page
            print(user["id"], user["name"], user["role"])
    with InferLab(url, secret) as alice:
        try:
            usage = alice.customer.get_usage(group_by="model")
        except QuotaExhaustedError as exc:  # never retried: the quota resets, not the request
            print("quota used up:", exc.message)
        except RateLimitError as exc:  # retried already (max_retries), honouring Retry-After
            print("still limited, retry after", exc.retry_after)
        else:
            print(usage)


if __name__ == "__main__":
    main()
