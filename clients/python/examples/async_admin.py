"""The asynchronous client: usage per tenant and the unpaid invoices, concurrently.

    INFERLAB_URL=http://127.0.0.1:8000 INFERLAB_KEY=il-... python clients/python/examples/async_admin.py
"""

from __future__ import annotations

import asyncio
import os

from inferlab_client import AsyncInferLab, JSONObject, RetryPolicy


async def report(client: AsyncInferLab) -> tuple[JSONObject, list[JSONObject]]:
    usage = client.admin.get_usage(group_by="tenant")
    invoices = client.admin.list_billing_invoices(status="finalized")
    by_tenant, unpaid = await asyncio.gather(usage, invoices)
    assert isinstance(by_tenant, dict)  # JSON unless format_="csv"
    return by_tenant, list(unpaid["data"])


async def main() -> None:
    retry = RetryPolicy(max_retries=4, initial_delay=0.25, max_delay=4.0)
    async with AsyncInferLab(os.environ.get("INFERLAB_URL", "http://127.0.0.1:8000"), os.environ["INFERLAB_KEY"],
                             retry=retry) as client:
        by_tenant, unpaid = await report(client)
        for row in by_tenant["data"]:
            print(row)
        print(len(unpaid), "finalized invoices not yet paid")
        async for entry in client.admin.iter_audit(action="key.create", limit=100):
            print(entry.get("action"), entry.get("target_id"))
        stream = await client.openai.chat.completions.create(
            model="smollm2-135m", messages=[{"role": "user", "content": "hi"}], stream=True)
        async for chunk in stream:
            print(chunk.choices[0].delta.content or "" if chunk.choices else "", end="")
        print()


if __name__ == "__main__":
    asyncio.run(main())
