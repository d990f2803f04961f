"""Hypothesis against the credential headers and every id parameter: 400/401/404, never a 500.

Requests go over a raw socket, so bytes no HTTP client would send (NUL, CR/LF, 8 KB, any
unicode) reach the server's parser and the auth middleware as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferlab.app import SERVICES, create_app
from inferlab.auth import ALL_SCOPES, LOCAL_OPERATOR
from inferlab.config import Settings
from inferlab.testing import EngineSimulator

HOSTILE = st.one_of(
    st.text(max_size=64),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.sampled_from(["' OR '1'='1", "1; DROP TABLE api_keys; --", "\x00", "il-\x00", "a\x00b", "%00", "../../etc/passwd",
                     "il-aaaaaaaaaaaa-" + "b" * 43, "Bearer il-", "x" * 8192, "il-" + "a" * 8192, "${jndi:ldap://x}",
                     "\r\nx-api-key: il-", "ｉｌ-ａ", "🔑" * 100, "eyJ.eyJ.sig"]),
)


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.runner = asyncio.Runner()
        self.sim = EngineSimulator()
        self.server: TestServer | None = None
        self.admin_key = ""
        self.runner.run(self._start(tmp_path))

    async def _start(self, tmp_path: Path) -> None:
        url = await self.sim.start()
        settings = Settings(data_dir=tmp_path, features={"auth": True}, auth={"pepper": "p", "bootstrap": False},
                            models=[{"name": "sim-model", "backend": "openai", "url": f"{url}/v1"}])
        app = await create_app(settings)
        self.server = TestServer(app)
        await self.server.start_server()
        stack = app[SERVICES].auth
        assert stack is not None
        user = await stack.admin.create_user(LOCAL_OPERATOR, "root", "platform-admin")
        self.admin_key = (await stack.admin.create_key(LOCAL_OPERATOR, name="fuzz", user_id=user.id, scopes=ALL_SCOPES)).token

    def raw(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> int:
        return self.runner.run(self._raw(method, target, headers, body))

    async def _raw(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
        assert self.server is not None and self.server.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        try:
            lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: test", b"Connection: close",
                     b"Content-Length: " + str(len(body)).encode()]
            lines += [name + b": " + value for name, value in headers]
            writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
        finally:
            writer.close()
            await writer.wait_closed()
        return int(status_line.split()[1])

    def close(self) -> None:
        async def stop() -> None:
            if self.server is not None:
                await self.server.close()
            await self.sim.stop()

        self.runner.run(stop())
        self.runner.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(value=HOSTILE, header=st.sampled_from([b"Authorization", b"x-api-key"]), bearer=st.booleans())
def test_credential_headers(harness: Harness, value: str, header: bytes, bearer: bool) -> None:
    raw = value.encode("utf-8")
    if header == b"Authorization" and bearer:
        raw = b"Bearer " + raw
    for method, target in (("GET", b"/v1/models"), ("GET", b"/admin/users"), ("POST", b"/v1/chat/completions")):
        status = harness.raw(method, target, [(header, raw)])
        assert status in (400, 401), (value, status)


ID_ROUTES = [("GET", "/admin/users/{}"), ("PATCH", "/admin/users/{}"), ("DELETE", "/admin/users/{}"),
             ("GET", "/admin/keys/{}"), ("DELETE", "/admin/keys/{}"), ("POST", "/admin/keys/{}/revoke"),
             ("POST", "/admin/keys/{}/rotate"), ("GET", "/v1/models/{}")]


@FUZZ
@given(value=HOSTILE.filter(lambda v: v not in ("", ".", "..")))
def test_id_parameters(harness: Harness, value: str) -> None:
    auth = [(b"x-api-key", harness.admin_key.encode())]
    ident = quote(value, safe="").encode()
    for method, template in ID_ROUTES:
        body = b"{}" if method == "PATCH" else b""
        status = harness.raw(method, template.encode().replace(b"{}", ident), auth, body)
        assert status in (400, 404), (method, template, value, status)
    for query in (b"after", b"user_id", b"tenant_id"):
        for path in (b"/admin/users", b"/admin/keys"):
            status = harness.raw("GET", path + b"?" + query + b"=" + ident, auth)
            assert status in (200, 400), (path, query, value, status)


@FUZZ
@given(value=HOSTILE)
def test_id_fields_in_bodies(harness: Harness, value: str) -> None:
    import orjson

    auth = [(b"x-api-key", harness.admin_key.encode()), (b"Content-Type", b"application/json")]
    for path, body in ((b"/admin/keys", {"name": "k", "user_id": value}), (b"/admin/users", {"name": value}),
                       (b"/admin/users", {"name": "n", "tenant_id": value}), (b"/admin/keys", {"name": "k", "models": [value]}),
                       (b"/admin/tenants", {"id": value})):
        status = harness.raw("POST", path, auth, orjson.dumps(body))
        assert status in (201, 400, 404), (path, body, status)
