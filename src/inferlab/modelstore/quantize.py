"""Requantise a stored GGUF with llama.cpp's ``llama-quantize`` (``inferlab engines build --tool
llama-quantize`` builds it from the same sources as ``llama-server``); the result is hashed into
the store under a new manifest that records what it was made from."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from inferlab.modelstore.store import Manifest, ModelStore, StoreError, parse_ref

QUANT_TYPES = frozenset({"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S",
                         "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "F16", "BF16", "F32"})


def find_quantizer(cache_dir: Path) -> Path:
    from inferlab.coordinator.locate import built_llama_tool

    on_path = shutil.which("llama-quantize")
    if on_path:
        return Path(on_path)
    built = built_llama_tool(cache_dir, "llama-quantize")
    if built.is_file():
        return built
    raise StoreError("llama-quantize is not built: run `inferlab engines build --tool llama-quantize`")


async def quantize(store: ModelStore, source: str, quant: str, target: str, *, quantizer: Path,
                   allow_requantize: bool = True, threads: int | None = None) -> Manifest:
    """``source`` (a stored model) quantised to ``quant``, stored as ``target``."""
    quant = quant.upper()
    if quant not in QUANT_TYPES:
        raise StoreError(f"unknown quantisation {quant!r}; choose one of {', '.join(sorted(QUANT_TYPES))}")
    name, tag = parse_ref(target)
    manifest = store.verify(source)
    with tempfile.TemporaryDirectory(dir=store.root, prefix="quantize-") as work:
        output = Path(work) / "model.gguf"
        argv = [str(quantizer), *(["--allow-requantize"] if allow_requantize else []),
                str(store.blob_path(manifest.model.digest)), str(output), quant, *([str(threads)] if threads else [])]
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        out, _ = await process.communicate()
        if process.returncode != 0 or not output.is_file():
            tail = out.decode("utf-8", "replace").strip().splitlines()[-5:]
            raise StoreError(f"llama-quantize failed ({process.returncode}): " + " | ".join(tail))
        layer = await asyncio.to_thread(store.ingest_file, output)
    return store.write_manifest(Manifest(name, tag, [layer], source=f"{manifest.ref} ({manifest.model.digest})",
                                         annotations={"quantization": quant}))
