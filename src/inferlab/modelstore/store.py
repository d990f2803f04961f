"""Blobs named by their sha256, manifests naming blobs; nothing is trusted that was not hashed.

A blob is written under ``partial/`` first and moved into ``blobs/sha256/<hex>`` only once its
digest is known (and matches what was expected): a blob's name is always its content's hash. A
manifest is written atomically (temporary file, then rename). ``prune`` removes blobs no manifest
names and partial downloads older than a day.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
GGUF = "application/vnd.inferlab.model.gguf"
OLLAMA_MODEL = "application/vnd.ollama.image.model"  # Ollama's registry: the GGUF layer
GGUF_TYPES = frozenset({GGUF, OLLAMA_MODEL})
REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._/-]{0,127})(?::(?P<tag>[A-Za-z0-9._-]{1,64}))?$")
STALE_PARTIAL_S = 86_400.0


class StoreError(Exception):
    """A store operation that cannot be done (a clear message for the CLI)."""


class DigestMismatch(StoreError):
    """The bytes do not hash to the digest they were expected to have."""


def parse_ref(ref: str) -> tuple[str, str]:
    """``name[:tag]`` → (name, tag), tag ``latest`` by default."""
    found = REF.match(ref)
    if found is None or ".." in ref:
        raise StoreError(f"{ref!r} is not a model reference (name[:tag], lower-case name)")
    return found["name"], found["tag"] or "latest"


def check_digest(digest: str) -> str:
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise StoreError(f"{digest!r} is not a digest (sha256:<64 hex digits>)")
    return digest


def hash_file(path: Path, sha: Any | None = None) -> Any:
    """The running sha256 of ``path``'s bytes (continuing ``sha`` when given)."""
    sha = sha or hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            sha.update(block)
    return sha


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str
    size: int
    media_type: str = GGUF
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    tag: str
    layers: list[Layer]
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    source: str | None = None  # where it was pulled from, or what it was made from
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def model(self) -> Layer:
        return next(layer for layer in self.layers if layer.media_type in GGUF_TYPES)

    def to_json(self) -> dict[str, Any]:
        return {"schemaVersion": 2, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(data["name"], data["tag"], [Layer(**layer) for layer in data["layers"]], data["created"],
                   data.get("source"), dict(data.get("annotations") or {}))


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()

    # -- where things are --------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / check_digest(digest).removeprefix("sha256:")

    def partial_path(self, key: str) -> Path:
        return self.root / "partial" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.part"

    def _manifest_path(self, name: str, tag: str) -> Path:
        return self.root / "manifests" / name / f"{tag}.json"

    # -- blobs -------------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def commit_blob(self, partial: Path, sha: Any, expected: str | None) -> Layer:
        """Move a fully written ``partial`` (whose bytes hash to ``sha``) into the blobs."""
        digest = "sha256:" + sha.hexdigest()
        if expected is not None and digest != check_digest(expected):
            partial.unlink(missing_ok=True)
            raise DigestMismatch(f"the download hashes to {digest}, not {expected}: rejected (and removed)")
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = partial.stat().st_size
        os.replace(partial, target)
        return Layer(digest, size)

    def ingest_file(self, path: Path, *, expected: str | None = None) -> Layer:
        """Copy a local file into the blobs (hashing it on the way)."""
        partial = self.partial_path(f"ingest:{path}:{time.time_ns()}")
        partial.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        with path.open("rb") as source, partial.open("wb") as sink:
            while block := source.read(CHUNK):
                sha.update(block)
                sink.write(block)
        return self.commit_blob(partial, sha, expected)

    def put_bytes(self, data: bytes, *, expected: str | None = None) -> Layer:
        """Store a small blob held in memory (a registry manifest, a config)."""
        partial = self.partial_path(f"bytes:{hashlib.sha256(data).hexdigest()}:{time.time_ns()}")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        return self.commit_blob(partial, hashlib.sha256(data), expected)

    def verify(self, ref: str) -> Manifest:
        """The manifest, once each of its blobs is there and hashes to its name; else ``DigestMismatch``."""
        manifest = self.show(ref)
        for layer in manifest.layers:
            path = self.blob_path(layer.digest)
            if not path.is_file():
                raise StoreError(f"{manifest.ref}: blob {layer.digest} is missing")
            actual = "sha256:" + hash_file(path).hexdigest()
            if actual != layer.digest:
                raise DigestMismatch(f"{manifest.ref}: blob {layer.digest} is corrupted (it hashes to {actual})")
        return manifest

    # -- manifests ---------------------------------------------------------------------------------

    def write_manifest(self, manifest: Manifest) -> Manifest:
        path = self._manifest_path(manifest.name, manifest.tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return manifest

    def show(self, ref: str) -> Manifest:
        name, tag = parse_ref(ref)
        path = self._manifest_path(name, tag)
        if not path.is_file():
            raise StoreError(f"no model {name}:{tag} in the store ({self.root})")
        return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))

    def model_path(self, ref: str) -> Path:
        """The GGUF file of a model (what a registry version's ``path`` names)."""
        return self.blob_path(self.show(ref).model.digest)

    def manifests(self) -> list[Manifest]:
        folder = self.root / "manifests"
        if not folder.is_dir():
            return []
        return sorted((Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))
                       for path in folder.rglob("*.json")), key=lambda m: m.ref)

    def remove(self, ref: str) -> Manifest:
        """Forget a manifest (its blobs stay until ``prune``, another manifest may name them)."""
        manifest = self.show(ref)
        self._manifest_path(manifest.name, manifest.tag).unlink()
        return manifest

    def prune(self, *, now: float | None = None) -> list[str]:
        """Remove blobs no manifest names and stale partial downloads; returns what was removed."""
        named = {layer.digest for manifest in self.manifests() for layer in manifest.layers}
        removed: list[str] = []
        blobs = self.root / "blobs" / "sha256"
        for path in sorted(blobs.iterdir()) if blobs.is_dir() else []:
            if "sha256:" + path.name not in named:
                path.unlink()
                removed.append("sha256:" + path.name)
        partials = self.root / "partial"
        moment = time.time() if now is None else now
        for path in sorted(partials.iterdir()) if partials.is_dir() else []:
            if moment - path.stat().st_mtime > STALE_PARTIAL_S:
                path.unlink()
                removed.append(str(path))
        return removed
