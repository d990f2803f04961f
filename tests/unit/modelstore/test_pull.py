"""Pulls resume after a cut connection (``Range``) and verify the digest; corrupted bytes, in
transit or on disk, are rejected; ``rm`` and ``prune`` leave only what a manifest names."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from inferlab.modelstore import DigestMismatch, ModelStore
from inferlab.modelstore.pull import PullError, pull

BLOB = os.urandom(3 * 1024 * 1024 + 17)
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


@dataclass
class FileServer:
    """Serves BLOB with Range support; ``cut_after`` bytes into the next full GET it drops the connection."""

    cut_after: int | None = None
    corrupt: bool = False
    ranges: list[str | None] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = bytes(b ^ 0xFF for b in BLOB[:10]) + BLOB[10:] if self.corrupt else BLOB
        asked = request.headers.get("Range")
        self.ranges.append(asked)
        start = int(asked.removeprefix("bytes=").rstrip("-")) if asked else 0
        response = web.StreamResponse(status=206 if asked else 200)
        response.content_length = len(body) - start
        if asked:
            response.headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        await response.prepare(request)
        if self.cut_after is not None and not asked:
            await response.write(body[start:start + self.cut_after])
            self.cut_after = None
            assert request.transport is not None
            request.transport.close()  # the connection is cut mid-blob
            return response
        await response.write(body[start:])
        await response.write_eof()
        return response


@pytest.fixture
async def served() -> AsyncIterator[tuple[FileServer, str]]:
    files = FileServer()
    app = web.Application()
    app.router.add_get("/smol.gguf", files.handle)
    server = TestServer(app)
    await server.start_server()
    yield files, str(server.make_url("/smol.gguf"))
    await server.close()


async def test_an_interrupted_pull_resumes_and_verifies(tmp_path: Path, served: tuple[FileServer, str]) -> None:
    files, url = served
    store = ModelStore(tmp_path)
    files.cut_after = 1024 * 1024
    with pytest.raises(PullError, match="resume"):
        await pull(store, url, "smol:q4", digest=DIGEST)
    have = next((tmp_path / "partial").iterdir()).stat().st_size
    assert 0 < have < len(BLOB)
    manifest = await pull(store, url, "smol:q4", digest=DIGEST)
    assert files.ranges == [None, f"bytes={have}-"]  # the second GET asked only for the rest
    assert manifest.model.digest == DIGEST and manifest.model.size == len(BLOB)
    assert store.model_path("smol:q4").read_bytes() == BLOB
    assert store.verify("smol:q4") == manifest
    assert not any((tmp_path / "partial").iterdir())
    assert [m.ref for m in store.manifests()] == ["smol:q4"]


async def test_corrupted_bytes_are_rejected(tmp_path: Path, served: tuple[FileServer, str]) -> None:
    files, url = served
    store = ModelStore(tmp_path)
    files.corrupt = True
    with pytest.raises(DigestMismatch):
        await pull(store, url, "smol", digest=DIGEST)
    assert not store.has_blob(DIGEST) and store.manifests() == []
    assert not any((tmp_path / "partial").iterdir())  # a retry starts clean

    files.corrupt = False
    await pull(store, url, "smol", digest=DIGEST)
    blob = store.blob_path(DIGEST)
    with blob.open("r+b") as handle:  # a byte flips on disk (inverted, so it always changes)
        handle.seek(100)
        handle.write(bytes([BLOB[100] ^ 0xFF]))
    with pytest.raises(DigestMismatch, match="corrupted"):
        store.verify("smol")


async def test_rm_and_prune(tmp_path: Path, served: tuple[FileServer, str]) -> None:
    _, url = served
    store = ModelStore(tmp_path)
    await pull(store, url, "smol:a", digest=DIGEST)
    await pull(store, url, "smol:b", digest=DIGEST)  # the blob is there: nothing downloaded
    store.remove("smol:a")
    assert store.prune() == []  # smol:b still names the blob
    store.remove("smol:b")
    assert store.prune() == [DIGEST] and not store.has_blob(DIGEST)
