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


# Run by the side venv's python (torch, transformers, sentencepiece): a tiny random Llama checkpoint in
# Hugging Face's format — config.json, model.safetensors, a SentencePiece tokenizer trained here on a
# few sentences. Its weights are random: it answers nonsense, which is all a conversion test needs.
TINY_LLAMA = """
import json, random, sys
from pathlib import Path
import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM

out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
rng = random.Random(7)
words = "the a model small answers question engine token fast slow server local pull store tiny".split()
lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(400)]
spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(out / "tokenizer"),
                               vocab_size=96, model_type="bpe", character_coverage=1.0, unk_id=0, bos_id=1,
                               eos_id=2, pad_id=-1, hard_vocab_limit=False, minloglevel=2)
vocab = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model")).vocab_size()
torch.manual_seed(7)
config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                     bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
LlamaForCausalLM(config).to(torch.float32).save_pretrained(out, safe_serialization=True)
(out / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                                       "unk_token": "<unk>", "add_bos_token": True}))
(out / "tokenizer.vocab").unlink()
print(vocab)
"""


def make_tiny_llama(python: Path, out_dir: Path) -> Path:
    """A tiny random Llama checkpoint (safetensors + config.json + tokenizer.model) in ``out_dir``."""
    done = subprocess.run([str(python), "-c", TINY_LLAMA, str(out_dir)], check=False, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"could not make the tiny checkpoint: {done.stderr.strip()[-800:]}")
    return out_dir


if __name__ == "__main__":
    print(ensure_convert_python(Path("~/.cache/inferlab")))
