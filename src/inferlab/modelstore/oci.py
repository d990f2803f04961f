"""Pulls from an OCI distribution registry, Ollama's included (``inferlab models pull <reference>``).

The distribution API, read only: ``GET /v2/<repository>/manifests/<tag or digest>`` with an
``Accept`` naming every manifest type we read (OCI image manifest and index, Docker schema 2 and
manifest list), then ``GET /v2/<repository>/blobs/<digest>`` for the config and each layer.

- **Auth**: a ``401`` challenge is answered by :class:`~inferlab.modelstore.oci_auth.RegistryAuth`
  (bearer token, anonymous or with Basic credentials; or Basic directly), then the request retried.
- **Redirects**: registries send blob GETs to object storage (Ollama's to a CDN, others to S3 with
  a signed URL). They are followed here, by hand, and ``Authorization`` goes only to the registry's
  own origin — never to the storage (which would leak the token, and which S3 refuses anyway).
- **Resume**: each blob downloads into a partial file named after its digest; an interrupted pull
  asks for the rest with ``Range`` next time, wherever the redirect now points.
- **Verification**: the manifest must hash to the digest asked for (``@sha256:``) and to the
  ``Docker-Content-Digest`` the registry sent; every blob must hash to its descriptor's digest and
  have its size — otherwise it is removed, never stored (``DigestMismatch``).
- **The model layer**: the first layer whose media type is GGUF — Ollama's
  ``application/vnd.ollama.image.model`` or InferLab's ``application/vnd.inferlab.model.gguf``
  (an OCI artifact whose ``artifactType`` / config media type is ``application/vnd.inferlab.model.v1``).
  Every layer is kept (Ollama's template, params and licence too); the registry's manifest and
  config are stored as blobs of the local manifest, so ``verify`` and ``prune`` cover them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import aiohttp
from yarl import URL

from inferlab.modelstore.oci_auth import AuthError, Credentials, RegistryAuth
from inferlab.modelstore.oci_ref import OciRef, parse_oci_ref
from inferlab.modelstore.pull import Progress, PullError, download_resumable
from inferlab.modelstore.store import (
    GGUF_TYPES,
    DigestMismatch,
    Layer,
    Manifest,
    ModelStore,
    StoreError,
    check_digest,
    parse_ref,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
ARTIFACT_TYPE = "application/vnd.inferlab.model.v1"  # InferLab's artifactType (and config media type)
MAX_MANIFEST = 4 << 20
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)


class OciClient:
    """One repository of one registry, over a caller's session."""

    def __init__(self, session: aiohttp.ClientSession, ref: OciRef, credentials: Credentials | None = None) -> None:
        self.ref = ref
        self._session = session
        self._auth = RegistryAuth(session, credentials)
        self._credentials = credentials
        self._scope = f"repository:{ref.repository}:pull"
        self._origin = URL(ref.base_url).origin()
        self.redirected_to: list[str] = []  # where blob GETs were sent (hosts of the storage)

    def _url(self, kind: str, reference: str) -> str:
        return f"{self.ref.base_url}/v2/{self.ref.repository}/{kind}/{reference}"

    @asynccontextmanager
    async def get(self, url: str, headers: dict[str, str]) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET from the registry, answering one auth challenge and following redirects without credentials."""
        response = await self._send(url, headers, with_auth=True)
        if response.status == 401:
            challenge = response.headers.get("WWW-Authenticate")
            response.release()
            await self._auth.answer(challenge, self._scope)
            response = await self._send(url, headers, with_auth=True)
        hops = 0
        while response.status in REDIRECTS:
            location = response.headers.get("Location")
            target = response.url.join(URL(location)) if location else None
            response.release()
            if target is None or hops == MAX_REDIRECTS or target.scheme not in ("http", "https"):
                raise PullError(f"GET {url}: a redirect without a usable Location (or too many)")
            hops += 1
            self.redirected_to.append(str(target.origin()))
            response = await self._send(str(target), headers, with_auth=target.origin() == self._origin)
        try:
            if response.status == 401:
                who = "the credentials" if self._credentials else "anonymous pulls (give --username)"
                raise AuthError(f"{self.ref}: the registry refused {who} (401)")
            if response.status == 403:
                raise AuthError(f"{self.ref}: access denied (403)")
            yield response
        finally:
            response.release()

    async def _send(self, url: str, headers: dict[str, str], *, with_auth: bool) -> aiohttp.ClientResponse:
        auth = self._auth.header(self._scope) if with_auth else {}
        try:
            return await self._session.get(url, headers={**headers, **auth}, allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PullError(f"GET {url} failed ({type(exc).__name__}); pull again to resume") from None

    async def manifest(self, reference: str | None = None) -> tuple[bytes, str]:
        """The manifest's bytes and digest (checked against the reference's digest and the registry's header)."""
        reference = reference or self.ref.reference
        url = self._url("manifests", reference)
        try:
            async with self.get(url, {"Accept": ACCEPT}) as response:
                if response.status == 404:
                    raise StoreError(f"{self.ref}: no such model (or tag) in the registry")
                if response.status != 200:
                    raise PullError(f"GET {url} answered {response.status}")
                if (response.content_length or 0) > MAX_MANIFEST:
                    raise StoreError(f"{self.ref}: the manifest is larger than {MAX_MANIFEST} bytes")
                chunks = bytearray()
                async for block in response.content.iter_chunked(1 << 16):
                    chunks += block
                    if len(chunks) > MAX_MANIFEST:
                        raise StoreError(f"{self.ref}: the manifest is larger than {MAX_MANIFEST} bytes")
                body = bytes(chunks)
                announced = response.headers.get("Docker-Content-Digest")
        except aiohttp.ClientError as exc:
            raise PullError(f"GET {url} broke off ({type(exc).__name__})") from None
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise DigestMismatch(f"{self.ref}: the manifest hashes to {digest}, not {reference}: rejected")
        if announced and announced.startswith("sha256:") and announced != digest:
            raise DigestMismatch(f"{self.ref}: the manifest hashes to {digest}, the registry said {announced}")
        return body, digest

    async def blob(self, store: ModelStore, descriptor: dict[str, Any], progress: Progress | None) -> Layer:
        """Download one blob (resuming a partial one), verified against its descriptor."""
        digest = check_digest(str(descriptor.get("digest", "")))
        size = descriptor.get("size")
        if store.has_blob(digest):
            layer = Layer(digest, store.blob_path(digest).stat().st_size)
        else:
            url = self._url("blobs", digest)
            layer = await download_resumable(store, lambda headers: self.get(url, headers), f"blob:{digest}",
                                             digest, progress, what=f"GET {url}")
        if isinstance(size, int) and layer.size != size:
            store.blob_path(digest).unlink(missing_ok=True)
            raise DigestMismatch(f"blob {digest} has {layer.size} bytes, its descriptor says {size}: rejected")
        return layer


def _document(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise StoreError(f"{what}: the manifest is not JSON") from None
    if not isinstance(data, dict):
        raise StoreError(f"{what}: the manifest is not a JSON object")
    return data


def pick_model_layer(document: dict[str, Any], what: str) -> dict[str, Any]:
    """The GGUF layer of an image manifest (by media type)."""
    layers = document.get("layers")
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise StoreError(f"{what}: the manifest has no list of layers")
    for layer in layers:
        if layer.get("mediaType") in GGUF_TYPES:
            return cast(dict[str, Any], layer)
    kinds = sorted({str(layer.get("mediaType")) for layer in layers})
    raise StoreError(f"{what}: no GGUF layer (media types: {', '.join(kinds) or 'none'}; expected one of "
                     f"{', '.join(sorted(GGUF_TYPES))})")


async def _resolve(client: OciClient) -> tuple[bytes, str, dict[str, Any]]:
    """The image manifest: an index (or manifest list) is followed to its first model manifest."""
    body, digest = await client.manifest()
    document = _document(body, str(client.ref))
    if document.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in document:
        entries = [entry for entry in document.get("manifests") or [] if isinstance(entry, dict)]
        chosen = next((entry for entry in entries if entry.get("artifactType") == ARTIFACT_TYPE),
                      entries[0] if entries else None)
        if chosen is None:
            raise StoreError(f"{client.ref}: the index names no manifest")
        body, digest = await client.manifest(check_digest(str(chosen.get("digest", ""))))
        document = _document(body, str(client.ref))
    return body, digest, document


async def pull_oci(store: ModelStore, reference: str | OciRef, local: str | None = None, *,
                   credentials: Credentials | None = None, session: aiohttp.ClientSession | None = None,
                   progress: Progress | None = None, timeout_s: float = 60.0) -> Manifest:
    """Pull ``reference`` from its registry into the store as ``local`` (default: its repository:tag)."""
    ref = parse_oci_ref(reference) if isinstance(reference, str) else reference
    name, tag = parse_ref(local or ref.local_ref())
    own = session is None
    session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_s,
                                                                             sock_connect=timeout_s))
    try:
        client = OciClient(session, ref, credentials)
        body, digest, document = await _resolve(client)
        model = pick_model_layer(document, str(ref))
        config = document.get("config")
        descriptors = [entry for entry in (config, *document["layers"]) if isinstance(entry, dict)]
        layers: list[Layer] = []
        for descriptor in descriptors:
            layer = await client.blob(store, descriptor, progress if descriptor is model else None)
            title = (descriptor.get("annotations") or {}).get("org.opencontainers.image.title")
            layers.append(Layer(layer.digest, layer.size, str(descriptor.get("mediaType") or "application/octet-stream"),
                                title if isinstance(title, str) else None))
        media_type = str(document.get("mediaType") or OCI_MANIFEST)
        stored = store.put_bytes(body, expected=digest)
        layers.append(Layer(stored.digest, stored.size, media_type))
    finally:
        if own:
            await session.close()
    return store.write_manifest(Manifest(name, tag, layers, source=f"{ref.registry}/{ref.repository}@{digest}",
                                         annotations={"oci.reference": str(ref), "oci.manifest": digest}))
