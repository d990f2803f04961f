"""``InferLab`` and ``AsyncInferLab``: one object per gateway and credential.

    client = InferLab("http://127.0.0.1:8000", api_key="il-...")
    client.openai.chat.completions.create(...)   # inference: the official openai SDK, pre-configured
    client.admin.create_tenant({...})             # the admin API, typed
    client.customer.get_usage(group_by="model")   # the customer API: usage, invoices
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from types import TracebackType
from typing import Any, Self

import openai

from inferlab_client._generated import AdminAPI, AsyncAdminAPI, AsyncCustomerAPI, CustomerAPI
from inferlab_client._retry import RetryPolicy
from inferlab_client._transport import AsyncTransport, Observer, SyncTransport


def _root(base_url: str) -> str:
    """The gateway's root URL (``http://host:8000``), whether given with ``/v1`` or without."""
    return base_url.rstrip("/").removesuffix("/v1")


class InferLab:
    """Synchronous client. ``max_retries`` applies to the admin/customer calls and to ``.openai``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, max_retries: int = 2, timeout: float = 60.0,
                 retry: RetryPolicy | None = None, headers: Mapping[str, str] | None = None,
                 observer: Observer | None = None) -> None:
        self.base_url = _root(base_url)
        self.api_key = api_key
        self._timeout = timeout
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._transport = SyncTransport(self.base_url, api_key, retry=self.retry, timeout=timeout, headers=headers,
                                        observer=observer)
        self.admin = AdminAPI(self._transport)
        self.customer = CustomerAPI(self._transport)

    @cached_property
    def openai(self) -> openai.OpenAI:
        """The official ``openai.OpenAI`` client for InferLab's ``/v1`` inference API."""
        return openai.OpenAI(base_url=self.base_url + "/v1", api_key=self.api_key or "none",
                             max_retries=self.retry.max_retries, timeout=self._timeout)

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None,
                idempotency_key: str | None = None) -> Any:
        """Any other route, with the same retries and errors: the JSON answer (text when not JSON)."""
        return self._transport.call("request", method.upper(), path, query=query, body=body,
                                    idempotency_key=idempotency_key, expect="json_or_text")

    def close(self) -> None:
        self._transport.close()
        if "openai" in self.__dict__:
            self.openai.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class AsyncInferLab:
    """Asynchronous client: ``async with AsyncInferLab(url, api_key=...) as client: await client.admin...``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, max_retries: int = 2, timeout: float = 60.0,
                 retry: RetryPolicy | None = None, headers: Mapping[str, str] | None = None,
                 observer: Observer | None = None) -> None:
        self.base_url = _root(base_url)
        self.api_key = api_key
        self._timeout = timeout
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._transport = AsyncTransport(self.base_url, api_key, retry=self.retry, timeout=timeout, headers=headers,
                                         observer=observer)
        self.admin = AsyncAdminAPI(self._transport)
        self.customer = AsyncCustomerAPI(self._transport)

    @cached_property
    def openai(self) -> openai.AsyncOpenAI:
        """The official ``openai.AsyncOpenAI`` client for InferLab's ``/v1`` inference API."""
        return openai.AsyncOpenAI(base_url=self.base_url + "/v1", api_key=self.api_key or "none",
                                  max_retries=self.retry.max_retries, timeout=self._timeout)

    async def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None,
                      idempotency_key: str | None = None) -> Any:
        return await self._transport.call("request", method.upper(), path, query=query, body=body,
                                          idempotency_key=idempotency_key, expect="json_or_text")

    async def close(self) -> None:
        await self._transport.close()
        if "openai" in self.__dict__:
            await self.openai.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()
