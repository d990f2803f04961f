"""``GET /v1/models`` lists only the models the caller's credential may use."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def listed(client: Client, key: str) -> list[str]:
    response = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert response.status == 200
    body = await response.json()
    assert body["object"] == "list"
    return [card["id"] for card in body["data"]]


async def test_a_model_scoped_key_lists_only_its_models(client: Client, make_key: Any) -> None:
    scoped = await make_key(models=("other-model",))
    unscoped = await make_key()
    assert await listed(client, scoped) == ["other-model"]
    assert sorted(await listed(client, unscoped)) == ["other-model", "sim-model"]
    # what the list shows, the key may read; what it hides answers 403
    headers = {"Authorization": f"Bearer {scoped}"}
    assert (await client.get("/v1/models/other-model", headers=headers)).status == 200
    assert (await client.get("/v1/models/sim-model", headers=headers)).status == 403


async def test_a_key_scoped_to_unknown_models_lists_nothing(client: Client, make_key: Any) -> None:
    assert await listed(client, await make_key(models=("gone-model",))) == []
