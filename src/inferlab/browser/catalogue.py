"""The browser model catalogue: which GGUF files a browser may run itself, where to fetch them,
how big they are, their SHA-256 (the client verifies what it downloaded against it), the least
device memory and the speed to expect, and the server model that answers when the browser cannot.

Built from ``browser.models``; each file's size and hash are read once when the gateway starts
(``prepare``, off the event loop: ~0.3 s for the 98 MB SmolLM2) unless configured.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferlab.config import BrowserModelSettings
from inferlab.coordinator.locate import resolve_model_path

MODEL_FILES = "/browser/models/"  # + <name>.gguf: the public, range-served model files
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BrowserModel:
    name: str
    path: Path
    size_bytes: int
    sha256: str
    server_model: str
    min_memory_gb: float
    expected_tokens_per_s: float
    max_tokens_per_s: float
    context_size: int
    engine: str = "wllama"

    @property
    def file_name(self) -> str:
        return f"{self.name}.gguf"  # wllama needs the URL to end in .gguf

    def as_json(self) -> dict[str, Any]:
        return {"id": self.name, "object": "browser.model", "engine": self.engine,
                "url": MODEL_FILES + self.file_name, "size_bytes": self.size_bytes, "sha256": self.sha256,
                "min_memory_gb": self.min_memory_gb, "expected_tokens_per_s": self.expected_tokens_per_s,
                "context_size": self.context_size, "server_model": self.server_model}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _model(config: BrowserModelSettings) -> BrowserModel:
    path = resolve_model_path(config.path)
    return BrowserModel(
        name=config.name, path=path, size_bytes=path.stat().st_size, sha256=config.sha256 or sha256_of(path),
        server_model=config.server_model or config.name, min_memory_gb=config.min_memory_gb,
        expected_tokens_per_s=config.expected_tokens_per_s, max_tokens_per_s=config.max_tokens_per_s,
        context_size=config.context_size)


class BrowserCatalogue:
    """The configured browser models, once their files were found and hashed (``prepare``)."""

    def __init__(self, configs: Sequence[BrowserModelSettings]) -> None:
        self._configs = list(configs)
        self._models: dict[str, BrowserModel] = {}

    async def prepare(self) -> None:
        """Find and hash every model file (raises ``EngineUnavailable`` for a missing one)."""
        found = await asyncio.to_thread(lambda: [_model(config) for config in self._configs])
        self._models = {model.name: model for model in found}

    def get(self, name: str) -> BrowserModel | None:
        return self._models.get(name)

    def by_file(self, file_name: str) -> BrowserModel | None:
        return next((model for model in self._models.values() if model.file_name == file_name), None)

    def models(self) -> list[BrowserModel]:
        return list(self._models.values())
