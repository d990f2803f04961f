"""A Python with torch for ``inferlab models convert`` in tests: a side virtualenv, made once and
cached (``~/.cache/inferlab/convert-torch-2.13.0``), so torch never enters the gateway's venv.

``pip install torch==2.13.0`` takes the CPU build lying on this machine's disk (for Python 3.11);
the rest (transformers, sentencepiece, safetensors, protobuf) comes from PyPI. The converter itself
is llama.cpp's ``convert_hf_to_gguf.py`` from the llama-cpp-python sdist
(:mod:`inferlab.modelstore.convert`); this venv only provides what it imports.

    python -m inferlab.testing.convert_env     # make it (prints the python's path)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

TORCH = "2.13.0"
PACKAGES = (f"torch=={TORCH}", "transformers==4.57.6", "sentencepiece>=0.1.98,<0.3", "numpy>=1.26,<2.4",
            "protobuf>=4.21,<5", "safetensors>=0.4")


def convert_venv(cache_dir: Path) -> Path:
    return cache_dir.expanduser() / f"convert-torch-{TORCH}"


def convert_python(cache_dir: Path) -> Path | None:
    """The side venv's python when it is complete, else None."""
    venv = convert_venv(cache_dir)
    python = venv / "bin" / "python"
    return python if (venv / ".complete").is_file() and python.is_file() else None


def base_python() -> str | None:
    """A Python 3.11 (torch's file on disk is for 3.11): this one when it is, else python3.11 on PATH."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    return shutil.which("python3.11")


def ensure_convert_python(cache_dir: Path) -> Path:
    """The side venv's python, made first if needed (minutes, once); ``RuntimeError`` when it cannot be."""
    ready = convert_python(cache_dir)
    if ready is not None:
        return ready
    base = base_python()
    if base is None:
        raise RuntimeError("no Python 3.11 for the converter's torch venv")
    venv = convert_venv(cache_dir)
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install the converter's packages: {done.stderr.strip()[-800:]}")
    (venv / ".complete").write_text(" ".join(PACKAGES) + "\n", encoding="utf-8")
    return python


if __name__ == "__main__":
    print(ensure_convert_python(Path("~/.cache/inferlab")))
