"""Resumable pulls over HTTP(S): the bytes go to a partial file named after the URL; an
interrupted pull (a cut connection, a killed process) continues where it stopped with ``Range:
bytes=<size>-`` when the server answers 206, and starts over when it answers 200. The digest is
computed over the whole file (the partial part re-hashed first) and checked against the expected
one before the blob is kept; a mismatch removes the partial file, so a retry starts clean."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import aiohttp

from inferlab.modelstore.store import Layer, Manifest, ModelStore, StoreError, hash_file, parse_ref

Progress = Callable[[int, int | None], None]  # (bytes so far, total when known)


class PullError(StoreError):
    """The server did not give the file (a status, a broken connection): run the pull again to resume."""


async def pull(store: ModelStore, url: str, ref: str, *, digest: str | None = None,
               session: aiohttp.ClientSession | None = None, progress: Progress | None = None,
               timeout_s: float = 60.0) -> Manifest:
    """Download ``url`` into the store as ``ref`` (``name[:tag]``), resuming a partial download."""
    name, tag = parse_ref(ref)
    if not url.startswith(("http://", "https://")):
        raise StoreError(f"{url!r} is not an http(s) URL")
    if digest is not None and store.has_blob(digest):
        blob = store.blob_path(digest)
        return store.write_manifest(Manifest(name, tag, [Layer(digest, blob.stat().st_size, filename=_filename(url))],
                                             source=url))
    own = session is None
    session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_s,
                                                                             sock_connect=timeout_s))
    try:
        layer = await _download(store, session, url, digest, progress)
    finally:
        if own:
            await session.close()
    layer = Layer(layer.digest, layer.size, filename=_filename(url))
    return store.write_manifest(Manifest(name, tag, [layer], source=url))


def _filename(url: str) -> str | None:
    tail = url.rsplit("/", 1)[-1].split("?", 1)[0]
    return tail or None


async def _download(store: ModelStore, session: aiohttp.ClientSession, url: str, digest: str | None,
                    progress: Progress | None) -> Layer:
    return await download_resumable(store, lambda headers: session.get(url, headers=headers),
                                    url if digest is None else f"{url}#{digest}", digest, progress, what=f"GET {url}")


Opener = Callable[[dict[str, str]], AbstractAsyncContextManager[aiohttp.ClientResponse]]


async def download_resumable(store: ModelStore, opener: Opener, key: str, digest: str | None,
                             progress: Progress | None, *, what: str) -> Layer:
    """Fetch into the partial file named by ``key`` (asking ``opener`` for the rest with ``Range``
    when part of it is there), then hash and commit it as a blob (``DigestMismatch`` when it is not
    ``digest``)."""
    partial = store.partial_path(key)
    partial.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        async with opener(headers) as response:
            if response.status == 416 and have:  # nothing left to fetch: the partial file is whole
                return await _finish(store, partial, digest)
            if response.status not in (200, 206):
                raise PullError(f"{what} answered {response.status}")
            if response.status == 206 and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                raise PullError(f"{what} answered a range other than the one asked for")
            resumed = response.status == 206 and have > 0
            total = _total(response, have if resumed else 0)
            sha = await asyncio.to_thread(hash_file, partial) if resumed else hashlib.sha256()
            mode = "ab" if resumed else "wb"
            done = have if resumed else 0
            with partial.open(mode) as sink:
                async for block in response.content.iter_chunked(1 << 16):
                    await asyncio.to_thread(sink.write, block)
                    sha.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
            if total is not None and done < total:
                raise PullError(f"{what} ended after {done} of {total} bytes; pull again to resume")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PullError(f"{what} broke off ({type(exc).__name__}); pull again to resume") from None
    return store.commit_blob(partial, sha, digest)


async def _finish(store: ModelStore, partial: Path, digest: str | None) -> Layer:
    sha = await asyncio.to_thread(hash_file, partial)
    return store.commit_blob(partial, sha, digest)


def _total(response: aiohttp.ClientResponse, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None and length.isdigit() else None
