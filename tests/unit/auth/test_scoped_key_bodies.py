"""A model-scoped key makes the auth middleware read the body before the handler: it reads it the
same way (api/body.py), so a gzip body is inflated there too and an oversized one is a 413."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from .conftest import MakeKey

CHAT = {"model": "sim-model", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}


async def test_a_gzip_body_is_inflated_before_the_model_scope_check(
    client: TestClient[Any, Any], make_key: MakeKey
) -> None:
    key = await make_key(models=("sim-model",))
    for model, status in (("sim-model", 200), ("other-model", 403)):
        packed = zlib.compress(orjson.dumps({**CHAT, "model": model}), wbits=31)
        response = await client.post(
            "/v1/chat/completions", data=packed,
            headers={"Authorization": f"Bearer {key}", "Content-Encoding": "gzip"},
        )
        assert response.status == status, await response.text()


async def test_an_oversized_body_is_413_in_the_auth_middleware(
    client: TestClient[Any, Any], make_key: MakeKey
) -> None:
    key = await make_key(models=("sim-model",))

    async def pieces() -> Any:
        for _ in range(80):  # 5 MiB, no Content-Length: read until it passes the 4 MiB cap
            yield b"a" * 65536

    response = await client.post(
        "/v1/chat/completions", data=pieces(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
