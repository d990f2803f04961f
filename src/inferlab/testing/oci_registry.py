"""A real OCI registry for tests: the Go distribution registry (Debian's ``docker-registry``
package: ``./dev setup test`` extracts its one binary into the venv), started on a free port with a
generated configuration — open, with Basic auth (htpasswd, bcrypt), or with token auth against
:class:`~inferlab.testing.oci_token.TokenService`.

- :func:`registry_binary`: the binary, or None (tests then skip, or fail under CI).
- :class:`RegistryProcess`: one registry, its storage in a directory of the test's.
- :func:`push_model`: pushes a GGUF as a model with plain HTTP calls of the OCI push API (``POST``
  an upload, ``PUT`` it with its digest, ``PUT`` the manifest) — Ollama's media types or InferLab's.
- :class:`BlobRedirector`: a front for a registry that answers every authorised blob GET with a
  ``307`` to a separate "object storage" server (as Ollama's registry sends blobs to a CDN and
  others to S3). The storage serves the registry's own files, with ``Range``, and like S3 refuses
  (``400``) a request that carries an ``Authorization`` header besides its signed URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from inferlab.testing.oci_token import ISSUER, SERVICE, TokenService

OLLAMA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OLLAMA_CONFIG = "application/vnd.docker.container.image.v1+json"
OLLAMA_MODEL = "application/vnd.ollama.image.model"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INFERLAB_ARTIFACT = "application/vnd.inferlab.model.v1"
INFERLAB_GGUF = "application/vnd.inferlab.model.gguf"


def registry_binary(cache_dir: Path | None = None) -> Path | None:
    """``docker-registry`` on PATH, in this Python's venv (where ``./dev`` puts it), or in the cache."""
    for candidate in (shutil.which("docker-registry"), Path(sys.prefix) / "bin" / "docker-registry",
                      (cache_dir or Path("~/.cache/inferlab").expanduser()) / "bin" / "docker-registry"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for the registry's htpasswd file, by the C library's crypt(3) (libxcrypt)."""
    import ctypes
    import ctypes.util

    library = ctypes.util.find_library("crypt")
    if library is None:
        raise RuntimeError("no libcrypt to hash the htpasswd entry")
    crypt = ctypes.CDLL(library).crypt
    crypt.argtypes, crypt.restype = [ctypes.c_char_p, ctypes.c_char_p], ctypes.c_char_p
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    salt = "$2b$05$" + "".join(secrets.choice(alphabet) for _ in range(21)) + "."
    hashed = crypt(password.encode(), salt.encode())
    if not hashed or not hashed.startswith(b"$2b$"):
        raise RuntimeError("the C library's crypt(3) does not do bcrypt")
    return str(hashed.decode())


def _config(root: Path, port: int, token: TokenService | None, users: dict[str, str] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if token is not None:
        config["auth"] = {"token": {"realm": token.realm, "service": SERVICE, "issuer": ISSUER,
                                    "rootcertbundle": str(token.write_certificate(root / "token.crt"))}}
    elif users:
        htpasswd = root / "htpasswd"
        htpasswd.write_text("".join(f"{user}:{bcrypt_hash(password)}\n" for user, password in users.items()))
        config["auth"] = {"htpasswd": {"realm": "inferlab-test", "path": str(htpasswd)}}
    return config


@dataclass
class RegistryProcess:
    root: Path
    token: TokenService | None = None
    users: dict[str, str] | None = None  # Basic auth (htpasswd) when given, and no token service
    port: int = 0
    _process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (its filesystem driver's layout)."""
        hexdigest = digest.removeprefix("sha256:")
        return self.root / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"

    async def start(self, binary: Path, *, ready_s: float = 20.0) -> RegistryProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        path = self.root / "config.yml"
        path.write_text(json.dumps(_config(self.root, self.port, self.token, self.users)), encoding="utf-8")  # JSON is YAML
        log = (self.root / "registry.log").open("ab")
        self._process = await asyncio.create_subprocess_exec(str(binary), "serve", str(path), stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + ready_s
        async with aiohttp.ClientSession() as session:
            while True:
                if self._process.returncode is not None:
                    raise RuntimeError(f"the registry exited: {(self.root / 'registry.log').read_text()[-800:]}")
                try:
                    async with session.get(self.url + "/v2/") as response:
                        if response.status in (200, 401):
                            return self
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the registry did not answer within {ready_s:g} s")
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()


@dataclass(frozen=True)
class PushedModel:
    repository: str
    tag: str
    manifest_digest: str
    model_digest: str
    model_size: int


async def _push_blob(session: aiohttp.ClientSession, url: str, repository: str, data: bytes,
                     headers: dict[str, str]) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with session.head(f"{url}/v2/{repository}/blobs/{digest}", headers=headers) as response:
        if response.status == 200:
            return digest
    async with session.post(f"{url}/v2/{repository}/blobs/uploads/", headers=headers) as response:
        assert response.status == 202, f"POST upload answered {response.status}: {await response.text()}"
        location = response.headers["Location"]
    target = location if location.startswith("http") else url + location
    separator = "&" if "?" in target else "?"
    async with session.put(f"{target}{separator}digest={digest}", data=io.BytesIO(data),
                           headers={**headers, "Content-Type": "application/octet-stream"}) as response:
        assert response.status == 201, f"PUT blob answered {response.status}: {await response.text()}"
    return digest


async def push_model(session: aiohttp.ClientSession, url: str, repository: str, tag: str, gguf: Path, *,
                     style: str = "ollama", authorization: str | None = None,
                     annotations: dict[str, str] | None = None) -> PushedModel:
    """Push ``gguf`` as ``repository:tag``: Ollama's layout (``style="ollama"``) or InferLab's OCI artifact."""
    headers = {"Authorization": authorization} if authorization else {}
    data = await asyncio.to_thread(gguf.read_bytes)
    model = await _push_blob(session, url, repository, data, headers)
    ollama = style == "ollama"
    config_bytes = json.dumps({"model_format": "gguf", "model_family": "llama", "file_type": "test"}).encode()
    config = await _push_blob(session, url, repository, config_bytes, headers)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OLLAMA_MANIFEST if ollama else OCI_MANIFEST,
        "config": {"mediaType": OLLAMA_CONFIG if ollama else INFERLAB_ARTIFACT, "digest": config,
                   "size": len(config_bytes)},
        "layers": [{"mediaType": OLLAMA_MODEL if ollama else INFERLAB_GGUF, "digest": model, "size": len(data),
                    **({} if ollama else {"annotations": {"org.opencontainers.image.title": gguf.name}})}],
    }
    if annotations:
        manifest["annotations"] = annotations
    if ollama:
        template = b"{{ .Prompt }}"
        manifest["layers"].append({"mediaType": "application/vnd.ollama.image.template",
                                   "digest": await _push_blob(session, url, repository, template, headers),
                                   "size": len(template)})
    body = json.dumps(manifest).encode()
    async with session.put(f"{url}/v2/{repository}/manifests/{tag}", data=body,
                           headers={**headers, "Content-Type": manifest["mediaType"]}) as response:
        assert response.status == 201, f"PUT manifest answered {response.status}: {await response.text()}"
    return PushedModel(repository, tag, "sha256:" + hashlib.sha256(body).hexdigest(), model, len(data))


async def push_token(token: TokenService, user: str, repository: str) -> str:
    """An ``Authorization`` value for pushing, asked of the token service as a client would."""
    import base64

    basic = base64.b64encode(f"{user}:{token.users[user]}".encode()).decode()
    async with aiohttp.ClientSession() as session, session.get(
            token.realm, params={"service": SERVICE, "scope": f"repository:{repository}:pull,push"},
            headers={"Authorization": f"Basic {basic}"}) as response:
        assert response.status == 200, await response.text()
        return "Bearer " + str((await response.json())["token"])


@dataclass
class BlobRedirector:
    """A front for ``registry``: blob GETs it authorises become 307s to a separate storage server."""

    registry: RegistryProcess
    storage_requests: list[dict[str, str | None]] = field(default_factory=list)
    _front: TestServer | None = None
    _storage: TestServer | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        assert self._front is not None
        return str(self._front.make_url("")).rstrip("/")

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    async def start(self) -> BlobRedirector:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        front = web.Application()
        front.router.add_route("*", "/{tail:.*}", self._forward)
        storage = web.Application()
        storage.router.add_get("/bucket/{digest}", self._serve)
        self._storage = TestServer(storage, host="127.0.0.1")
        await self._storage.start_server()
        self._front = TestServer(front, host="127.0.0.1")
        await self._front.start_server()
        return self

    async def close(self) -> None:
        for server in (self._front, self._storage):
            if server is not None:
                await server.close()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None and self._storage is not None
        headers = {name: value for name, value in request.headers.items()
                   if name.lower() in ("authorization", "accept", "range", "content-type")}
        is_blob = request.method == "GET" and "/blobs/sha256:" in request.path
        async with self._session.request(request.method, self.registry.url + request.path_qs, headers=headers,
                                         data=await request.read(), allow_redirects=False) as upstream:
            if is_blob and upstream.status in (200, 206):
                digest = request.path.rsplit("/", 1)[-1]
                signed = self._storage.make_url(f"/bucket/{digest}").with_query(signature=secrets.token_hex(8))
                raise web.HTTPTemporaryRedirect(location=str(signed))
            body = await upstream.read()
            keep = {name: value for name, value in upstream.headers.items()
                    if name.lower() in ("content-type", "docker-content-digest", "www-authenticate", "location",
                                        "content-range", "docker-distribution-api-version")}
            return web.Response(status=upstream.status, body=body, headers=keep)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        self.storage_requests.append({"authorization": authorization, "range": request.headers.get("Range")})
        if authorization is not None:
            return web.Response(status=400, text="Only one auth mechanism allowed")
        path = self.registry.blob_file(request.match_info["digest"])
        if not path.is_file():
            return web.Response(status=404)
        return web.FileResponse(path)
