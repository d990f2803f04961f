"""Walking InferLab's cursor pages: ``{"object": "list", "data": [...], "has_more", "next_after"}``
(the admin lists) or ``{"data", "has_more", "last_id"}`` (the OpenAI-style lists)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

JSONObject = dict[str, Any]


def next_cursor(page: JSONObject) -> str | None:
    if not page.get("has_more"):
        return None
    cursor = page.get("next_after") or page.get("last_id")
    if cursor is None and page.get("data"):
        cursor = page["data"][-1].get("id")
    return str(cursor) if cursor is not None else None


def paginate(fetch: Callable[[str | None], JSONObject]) -> Iterator[JSONObject]:
    """Every item, page after page: ``fetch(after)`` gets one page."""
    after: str | None = None
    while True:
        page = fetch(after)
        yield from page.get("data", [])
        after = next_cursor(page)
        if after is None:
            return


async def apaginate(fetch: Callable[[str | None], Awaitable[JSONObject]]) -> AsyncIterator[JSONObject]:
    after: str | None = None
    while True:
        page = await fetch(after)
        for item in page.get("data", []):
            yield item
        after = next_cursor(page)
        if after is None:
            return
