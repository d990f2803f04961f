"""The official SDK sees the right exception classes."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient

from inferlab.auth import keys

MESSAGES: Any = [{"role": "user", "content": "hi"}]


def sdk(client: TestClient[Any, Any], key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=key, max_retries=0)


async def test_bad_key_raises_authentication_error(client: TestClient[Any, Any]) -> None:
    async with sdk(client, keys.generate().token) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model="sim-model", messages=MESSAGES)
    async with sdk(client, "not-a-key") as worse:
        with pytest.raises(openai.AuthenticationError):
            await worse.models.list()


async def test_model_outside_scope_raises_permission_denied(client: TestClient[Any, Any], make_key: Any) -> None:
    key = await make_key(models=("other-model",))
    async with sdk(client, key) as scoped:
        with pytest.raises(openai.PermissionDeniedError):
            await scoped.chat.completions.create(model="sim-model", messages=MESSAGES)
        with pytest.raises(openai.PermissionDeniedError):
            await scoped.embeddings.create(model="sim-model", input="x")
        reply = await scoped.chat.completions.create(model="other-model", messages=MESSAGES)
        assert reply.choices[0].message.content
        streamed = await scoped.chat.completions.create(model="other-model", messages=MESSAGES, stream=True)
        assert [chunk async for chunk in streamed]
