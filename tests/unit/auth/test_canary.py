"""A canary key, used on every route, both headers, good and bad, never shows up in logs, error
bodies or metrics — nor does its secret, nor the pepper."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from inferlab.auth import LOCAL_OPERATOR
from inferlab.logs import JsonFormatter, TextFormatter

CANARY_PEPPER = "pepper-canary-0123456789abcdef"  # the pepper conftest configures


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(JsonFormatter().format(record))
        self.lines.append(TextFormatter().format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    root, inferlab = logging.getLogger(), logging.getLogger("inferlab")
    old_level = inferlab.level
    root.addHandler(handler)
    inferlab.addHandler(handler)
    inferlab.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    inferlab.removeHandler(handler)
    inferlab.setLevel(old_level)


async def test_canary_never_leaks(client: TestClient[Any, Any], make_key: Any, stack: Any, captured: Capture) -> None:
    canary = await make_key(role="tenant-admin", groups=("inference", "admin"), models=("sim-model",), name="canary")
    secret = canary.split("-", 2)[2]
    variants = [canary, canary[:-1] + ("A" if canary[-1] != "A" else "B"), canary + "x", canary.upper(), f"{canary} {canary}"]
    bodies: list[str] = []
    routes = [(route.method, route.resource.canonical) for route in client.app.router.routes()
              if route.method != "HEAD" and route.resource is not None]
    for variant in variants:
        for header in ({"Authorization": f"Bearer {variant}"}, {"x-api-key": variant}):
            for method, template in routes:
                path = (template.replace("{model_id}", "other-model").replace("{user_id}", "u_x")
                        .replace("{key_id}", "aaaaaaaaaaaa"))
                response = await client.request(method, path, json={"model": "other-model", "messages": [],
                                                                    "name": variant, "key": variant}, headers=header)
                bodies.append(await response.text())
                bodies.append(str(dict(response.headers)))
    stack.service.forget(canary.split("-")[1])
    await stack.admin.revoke_key(LOCAL_OPERATOR, canary.split("-")[1])
    bodies.append(await (await client.get("/v1/models", headers={"x-api-key": canary})).text())
    await stack.service.last_used.flush()
    metrics = await (await client.get("/metrics")).text()
    logs = "\n".join(captured.lines)
    assert captured.lines, "nothing was logged: the capture is broken"
    for haystack, where in ((logs, "logs"), ("\n".join(bodies), "responses"), (metrics, "metrics")):
        for needle in (canary, secret, CANARY_PEPPER):
            assert needle not in haystack, f"a secret reached the {where}"
