"""Pulls from a real OCI registry (the Go distribution registry, Debian's ``docker-registry``):
Ollama's layout and InferLab's artifact, by tag and by digest; a connection cut mid-blob resumes
with ``Range`` and verifies; a blob corrupted in the registry's storage is rejected and not stored;
token auth (anonymous and Basic credentials against a real token service); blob redirects to a
storage server that never sees the ``Authorization`` header."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from inferlab.modelstore import DigestMismatch, ModelStore, StoreError
from inferlab.modelstore.oci import OciClient, pull_oci
from inferlab.modelstore.oci_auth import AuthError, Credentials
from inferlab.modelstore.oci_ref import parse_oci_ref
from inferlab.modelstore.pull import PullError
from inferlab.testing.needs import require
from inferlab.testing.oci_registry import (
    BlobRedirector,
    RegistryProcess,
    push_model,
    push_token,
    registry_binary,
)
from inferlab.testing.oci_token import TokenService
from inferlab.testing.tcp_proxy import TcpProxy

MODEL_BYTES = 24 * 1024 * 1024 + 11


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model-sized blob (its bytes are random: these tests are about transport, not inference)."""
    path = tmp_path_factory.mktemp("gguf") / "smol.gguf"
    path.write_bytes(b"GGUF" + os.urandom(MODEL_BYTES - 4))
    return path


@pytest.fixture
def binary() -> Path:
    found = registry_binary()
    require(found is not None, "docker-registry is not installed (./dev setup test extracts Debian's package)")
    assert found is not None
    return found


@pytest.fixture
async def registry(binary: Path, tmp_path: Path) -> AsyncIterator[RegistryProcess]:
    process = await RegistryProcess(tmp_path / "registry").start(binary)
    yield process
    await process.close()


@pytest.fixture
async def token_registry(binary: Path, tmp_path: Path) -> AsyncIterator[tuple[RegistryProcess, TokenService]]:
    token = await TokenService(users={"alice": "s3cret"}).start()
    process = await RegistryProcess(tmp_path / "registry", token=token).start(binary)
    yield process, token
    await process.close()
    await token.close()


async def test_pull_ollama_layout_by_tag_and_digest(registry: RegistryProcess, model_file: Path,
                                                    tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        pushed = await push_model(session, registry.url, "library/smol", "q4", model_file)
    store = ModelStore(tmp_path / "store")
    manifest = await pull_oci(store, f"{registry.host}/library/smol:q4")
    assert manifest.ref == "library/smol:q4"
    assert manifest.model.digest == pushed.model_digest and manifest.model.size == MODEL_BYTES
    assert manifest.model.media_type == "application/vnd.ollama.image.model"
    pulled = await asyncio.to_thread(store.model_path("library/smol:q4").read_bytes)
    assert pulled == await asyncio.to_thread(model_file.read_bytes)
    kinds = [layer.media_type for layer in manifest.layers]
    assert kinds == ["application/vnd.docker.container.image.v1+json", "application/vnd.ollama.image.model",
                     "application/vnd.ollama.image.template", "application/vnd.docker.distribution.manifest.v2+json"]
    assert manifest.annotations["oci.manifest"] == pushed.manifest_digest  # the registry's manifest, kept
    assert store.has_blob(pushed.manifest_digest)
    assert store.verify("library/smol:q4") == manifest

    by_digest = await pull_oci(store, f"{registry.host}/library/smol@{pushed.manifest_digest}", "smol:pinned")
    assert by_digest.model.digest == pushed.model_digest
    with pytest.raises(StoreError, match="no such model"):
        await pull_oci(store, f"{registry.host}/library/smol@sha256:{'0' * 64}", "smol:x")
    with pytest.raises(StoreError, match="no such model"):
        await pull_oci(store, f"{registry.host}/library/smol:nope")


async def test_pull_inferlab_artifact_through_the_cli(registry: RegistryProcess, model_file: Path,
                                                      tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        pushed = await push_model(session, registry.url, "team/smol", "v1", model_file, style="inferlab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inferlab", "models", "pull", f"{registry.host}/team/smol:v1", "smol:v1",
        "--data-dir", str(tmp_path / "data"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    row = json.loads(out)
    assert row["name"] == "smol" and row["tag"] == "v1" and row["size"] == MODEL_BYTES
    model = next(layer for layer in row["layers"] if layer["digest"] == pushed.model_digest)
    assert model["media_type"] == "application/vnd.inferlab.model.gguf" and model["filename"] == "smol.gguf"
    assert await asyncio.to_thread(Path(row["path"]).read_bytes) == await asyncio.to_thread(model_file.read_bytes)


async def test_an_image_index_leads_to_the_model_manifest(registry: RegistryProcess, model_file: Path,
                                                          tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        pushed = await push_model(session, registry.url, "team/smol", "v1", model_file, style="inferlab")
        async with session.get(f"{registry.url}/v2/team/smol/manifests/v1",
                               headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}) as response:
            size = len(await response.read())
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                           "digest": pushed.manifest_digest, "size": size,
                                           "artifactType": "application/vnd.inferlab.model.v1"}]}).encode()
        async with session.put(f"{registry.url}/v2/team/smol/manifests/all", data=index,
                               headers={"Content-Type": "application/vnd.oci.image.index.v1+json"}) as response:
            assert response.status == 201, await response.text()
    store = ModelStore(tmp_path / "store")
    manifest = await pull_oci(store, f"{registry.host}/team/smol:all")
    assert manifest.model.digest == pushed.model_digest
    assert manifest.annotations["oci.manifest"] == pushed.manifest_digest  # the index's entry, not the index


async def test_a_large_manifest_is_read_whole(registry: RegistryProcess, model_file: Path, tmp_path: Path) -> None:
    notes = {"org.opencontainers.image.description": "x" * 300_000}  # many TCP segments, several reads
    async with aiohttp.ClientSession() as session:
        pushed = await push_model(session, registry.url, "team/smol", "big", model_file, style="inferlab",
                                  annotations=notes)
    manifest = await pull_oci(ModelStore(tmp_path / "store"), f"{registry.host}/team/smol:big")
    assert manifest.annotations["oci.manifest"] == pushed.manifest_digest


async def test_a_pull_cut_mid_blob_resumes_with_range_and_verifies(registry: RegistryProcess, model_file: Path,
                                                                   tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        pushed = await push_model(session, registry.url, "library/smol", "q4", model_file)
    proxy = TcpProxy("127.0.0.1", registry.port)
    await proxy.start()
    store = ModelStore(tmp_path / "store")
    seen: list[int] = []
    cuts: list[asyncio.Task[None]] = []

    def cut_mid_blob(done: int, total: int | None) -> None:
        seen.append(done)
        if done >= 4 * 1024 * 1024 and not cuts:
            proxy.pause()  # forward nothing more, then reset every connection
            cuts.append(asyncio.get_running_loop().create_task(proxy.cut()))

    try:
        with pytest.raises(PullError, match="pull again to resume"):
            await pull_oci(store, f"127.0.0.1:{proxy.port}/library/smol:q4", progress=cut_mid_blob)
        await cuts[0]
        partial = next((store.root / "partial").iterdir())
        have = partial.stat().st_size
        assert 4 * 1024 * 1024 <= have < MODEL_BYTES  # cut mid-blob, the bytes so far kept
        assert store.manifests() == [] and not store.has_blob(pushed.model_digest)

        proxy.resume()
        await proxy.restore()
        seen.clear()
        manifest = await pull_oci(store, f"127.0.0.1:{proxy.port}/library/smol:q4", progress=lambda d, t: seen.append(d))
    finally:
        await proxy.stop()
    assert seen[0] > have and seen[-1] == MODEL_BYTES  # the second GET started where the first stopped (Range)
    assert manifest.model.digest == pushed.model_digest
    assert store.verify("library/smol:q4") == manifest
    assert not any((store.root / "partial").iterdir())


async def test_a_blob_corrupted_in_the_registry_is_rejected_and_not_stored(registry: RegistryProcess,
                                                                           model_file: Path, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        pushed = await push_model(session, registry.url, "library/smol", "q4", model_file)
    stored = registry.blob_file(pushed.model_digest)
    original = stored.read_bytes()
    stored.write_bytes(original[:1000] + bytes([original[1000] ^ 0xFF]) + original[1001:])  # bit rot, same size
    store = ModelStore(tmp_path / "store")
    with pytest.raises(DigestMismatch, match="rejected"):
        await pull_oci(store, f"{registry.host}/library/smol:q4")
    assert not store.has_blob(pushed.model_digest) and store.manifests() == []
    assert not any((store.root / "partial").iterdir())  # nothing kept: a retry starts clean

    stored.write_bytes(original)
    manifest = await pull_oci(store, f"{registry.host}/library/smol:q4")
    assert store.verify(manifest.ref).model.digest == pushed.model_digest


async def test_token_auth_anonymous_and_with_credentials(token_registry: tuple[RegistryProcess, TokenService],
                                                         model_file: Path, tmp_path: Path) -> None:
    registry, token = token_registry
    async with aiohttp.ClientSession() as session:
        for repository in ("public/smol", "private/smol"):
            await push_model(session, registry.url, repository, "q4", model_file,
                             authorization=await push_token(token, "alice", repository))
    store = ModelStore(tmp_path / "store")
    token.requests.clear()

    public = await pull_oci(store, f"{registry.host}/public/smol:q4")  # anonymous: the token service's token
    assert public.model.size == MODEL_BYTES
    assert {(r.user, r.scope) for r in token.requests} == {(None, "repository:public/smol:pull")}

    with pytest.raises(AuthError, match=r"refused anonymous pulls \(give --username\) \(401\)"):
        await pull_oci(store, f"{registry.host}/private/smol:q4")  # anonymous gets no access there
    with pytest.raises(AuthError, match="refused user 'alice'"):
        await pull_oci(store, f"{registry.host}/private/smol:q4", credentials=Credentials("alice", "wrong"))
    private = await pull_oci(store, f"{registry.host}/private/smol:q4", credentials=Credentials("alice", "s3cret"))
    assert private.model.digest == public.model.digest
    assert token.requests[-1].user == "alice" and token.requests[-1].service == "inferlab-test-registry"


async def test_basic_auth(binary: Path, model_file: Path, tmp_path: Path) -> None:
    registry = await RegistryProcess(tmp_path / "registry", users={"bob": "hunter2"}).start(binary)
    try:
        async with aiohttp.ClientSession() as session:
            await push_model(session, registry.url, "team/smol", "q4", model_file,
                             authorization=Credentials("bob", "hunter2").basic())
        store = ModelStore(tmp_path / "store")
        with pytest.raises(AuthError, match="wants a username and password"):
            await pull_oci(store, f"{registry.host}/team/smol:q4")
        with pytest.raises(AuthError, match="refused"):
            await pull_oci(store, f"{registry.host}/team/smol:q4", credentials=Credentials("bob", "wrong"))
        manifest = await pull_oci(store, f"{registry.host}/team/smol:q4", credentials=Credentials("bob", "hunter2"))
    finally:
        await registry.close()
    assert manifest.model.size == MODEL_BYTES


async def test_blob_redirects_never_carry_the_authorization_header_and_resume_there(
        token_registry: tuple[RegistryProcess, TokenService], model_file: Path, tmp_path: Path) -> None:
    registry, token = token_registry
    async with aiohttp.ClientSession() as session:
        pushed = await push_model(session, registry.url, "private/smol", "q4", model_file,
                                  authorization=await push_token(token, "alice", "private/smol"))
    front = await BlobRedirector(registry).start()
    host = front.host
    store = ModelStore(tmp_path / "store")
    partial = store.partial_path(f"blob:{pushed.model_digest}")  # an earlier pull stopped 5 MiB in
    partial.parent.mkdir(parents=True)
    await asyncio.to_thread(partial.write_bytes, (await asyncio.to_thread(model_file.read_bytes))[:5 << 20])
    try:
        async with aiohttp.ClientSession() as session:
            client = OciClient(session, parse_oci_ref(f"{host}/private/smol:q4"), Credentials("alice", "s3cret"))
            _, digest = await client.manifest()
            assert digest == pushed.manifest_digest
            layer = await client.blob(store, {"digest": pushed.model_digest, "size": MODEL_BYTES}, None)
    finally:
        await front.close()
    assert layer.digest == pushed.model_digest and store.has_blob(pushed.model_digest)
    assert client.redirected_to and all(target != f"http://{host}" for target in client.redirected_to)
    # the token stayed home; the resumed GET's Range went to the storage
    assert front.storage_requests == [{"authorization": None, "range": f"bytes={5 << 20}-"}]
    stored = await asyncio.to_thread(store.blob_path(pushed.model_digest).read_bytes)
    assert "sha256:" + hashlib.sha256(stored).hexdigest() == pushed.model_digest
