"""``inferlab models convert``: a Hugging Face checkpoint (``config.json``, ``*.safetensors``, the
tokenizer's files) into a GGUF in the store, with llama.cpp's own ``convert_hf_to_gguf.py``.

The converter comes from the same llama-cpp-python sdist ``llama-server`` is built from (so the GGUF
it writes is one that llama-server reads): the first conversion extracts ``convert_hf_to_gguf.py``,
its ``conversion/`` package and ``gguf-py/`` into ``<engines.cache_dir>/llama.cpp/<version>-convert``.
It imports torch, transformers and sentencepiece, which the gateway never needs: it runs in the
Python named by ``registry.convert_python`` (a venv with the ``convert`` extra installed), or in
this one when it has torch. The result is hashed into the store under a manifest that records the
checkpoint it came from and the output type.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from inferlab.modelstore.store import Manifest, ModelStore, StoreError, parse_ref

OUT_TYPES = frozenset({"f32", "f16", "bf16", "q8_0", "tq1_0", "tq2_0", "auto"})
_MEMBERS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def converter_dir(cache_dir: Path) -> Path:
    from inferlab.coordinator.locate import LLAMA_CPP_PYTHON_VERSION

    return cache_dir.expanduser() / "llama.cpp" / f"{LLAMA_CPP_PYTHON_VERSION}-convert"


def ensure_converter(cache_dir: Path) -> Path:
    """The directory holding ``convert_hf_to_gguf.py``, extracted from the sdist on first use."""
    from inferlab.coordinator.locate import LLAMA_CPP_PYTHON_VERSION

    target = converter_dir(cache_dir)
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="inferlab-convert-") as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                               f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", tmp],
                              check=False, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            raise StoreError(f"could not download the llama-cpp-python sdist: {done.stderr.strip()[-400:]}")
        prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
        staging = Path(tmp) / "converter"
        with tarfile.open(sdists[0]) as archive:
            members = [member for member in archive.getmembers()
                       if member.name.startswith(prefix) and member.name.removeprefix(prefix).startswith(_MEMBERS)]
            archive.extractall(staging, members=members, filter="data")
        source = staging / prefix
        if not (source / "convert_hf_to_gguf.py").is_file():
            raise StoreError("the llama-cpp-python sdist has no convert_hf_to_gguf.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(source), str(target))
    return target


def find_convert_python(configured: str | None) -> str:
    """``registry.convert_python`` when set, else this Python if it has torch (the ``convert`` extra)."""
    if configured:
        path = shutil.which(configured) or configured
        if not Path(path).is_file():
            raise StoreError(f"the converter's python {configured!r} (--python, registry.convert_python) does not exist")
        return path
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    raise StoreError("the converter needs torch: install inferlab[convert] in a venv of its own and set "
                     "registry.convert_python to its python (torch is never needed by the gateway)")


def check_checkpoint(source: Path) -> Path:
    if not (source / "config.json").is_file():
        raise StoreError(f"{source} is not a Hugging Face checkpoint (no config.json)")
    if not any(source.glob("*.safetensors")) and not any(source.glob("*.bin")):
        raise StoreError(f"{source} has no weights (*.safetensors)")
    return source


async def convert(store: ModelStore, source: Path, target: str, *, python: str, converter: Path,
                  outtype: str = "f16") -> Manifest:
    """Convert the checkpoint in ``source`` and store the GGUF as ``target``."""
    outtype = outtype.lower()
    if outtype not in OUT_TYPES:
        raise StoreError(f"unknown output type {outtype!r}; choose one of {', '.join(sorted(OUT_TYPES))}")
    name, tag = parse_ref(target)
    check_checkpoint(source)
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.root, prefix="convert-") as work:
        output = Path(work) / "model.gguf"
        process = await asyncio.create_subprocess_exec(
            python, str(converter / "convert_hf_to_gguf.py"), str(source), "--outfile", str(output),
            "--outtype", outtype, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await process.communicate()
        if process.returncode != 0 or not output.is_file():
            tail = out.decode("utf-8", "replace").strip().splitlines()[-6:]
            raise StoreError(f"convert_hf_to_gguf.py failed ({process.returncode}): " + " | ".join(tail))
        layer = await asyncio.to_thread(store.ingest_file, output)
    return store.write_manifest(Manifest(name, tag, [layer], source=str(source),
                                         annotations={"converted": outtype}))
