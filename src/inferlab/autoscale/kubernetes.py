"""``KubernetesActuator``: a Deployment's replicas through its ``scale`` subresource.

``PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`` with a JSON merge patch
``{"spec": {"replicas": n}}``; ``GET`` on the same path reads ``spec.replicas`` and
``status.replicas`` back. Kubernetes does the rest: the ReplicaSet starts pods, and a pod scaled
away gets its ``preStop`` hook and ``terminationGracePeriodSeconds`` to drain
(``deploy/kubernetes``), so in-flight requests finish there too.

Errors talking to the API server are logged and retried at the next decision; they never reach a
client request.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp

TIMEOUT_S = 5.0


class KubernetesError(Exception):
    """The API server refused or could not be reached (the message says which)."""


class KubernetesActuator:
    name = "kubernetes"

    def __init__(self, session: aiohttp.ClientSession, api_url: str, namespace: str, deployment: str, *,
                 token: str | None = None, ca_file: str | None = None, logger: logging.Logger | None = None) -> None:
        self._session = session
        self.url = f"{api_url.rstrip('/')}/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._ssl: ssl.SSLContext | bool = True
        if ca_file is not None and api_url.startswith("https") and Path(ca_file).is_file():
            self._ssl = ssl.create_default_context(cafile=ca_file)
        self._log = logger or logging.getLogger("inferlab.autoscale")
        self._spec = 0
        self._status = 0
        self.last_error: str | None = None

    def replicas(self) -> int:
        return self._spec

    def ready(self) -> int:
        return self._status

    async def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/merge-patch+json"
        try:
            async with self._session.request(method, self.url, json=body, headers=headers, ssl=self._ssl,
                                             timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as response:
                payload: dict[str, Any] = await response.json(content_type=None)
                if response.status >= 400:
                    raise KubernetesError(f"{method} scale: {response.status} {payload.get('message', '')}".strip())
                return payload
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise KubernetesError(f"{method} scale: {type(exc).__name__}: {exc}") from exc

    def _read(self, scale: dict[str, Any]) -> None:
        self._spec = int(scale.get("spec", {}).get("replicas", 0) or 0)
        self._status = int(scale.get("status", {}).get("replicas", 0) or 0)

    def can_start(self) -> bool:
        return self.last_error is None

    async def refresh(self) -> None:
        """Read the Deployment's scale (at start and before each decision)."""
        try:
            self._read(await self._call("GET"))
            self.last_error = None
        except KubernetesError as exc:
            self.last_error = str(exc)
            self._log.warning("kubernetes scale read failed", extra={"url": self.url, "error": str(exc)})

    async def scale(self, desired: int) -> None:
        try:
            self._read(await self._call("PATCH", {"spec": {"replicas": desired}}))
            self.last_error = None
        except KubernetesError as exc:
            self.last_error = str(exc)
            self._log.warning("kubernetes scale failed", extra={"url": self.url, "error": str(exc)})

    async def close(self) -> None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {"actuator": self.name, "url": self.url, "spec_replicas": self._spec, "status_replicas": self._status,
                "error": self.last_error}
