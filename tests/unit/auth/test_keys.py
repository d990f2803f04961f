"""Key format, keyed hash, pepper file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inferlab.auth import keys
from inferlab.auth.pepper import load_pepper
from inferlab.config import Settings


def test_key_shape_and_round_trip() -> None:
    new = keys.generate()
    assert new.token.startswith("il-") and len(new.token) == keys.MAX_KEY_LENGTH
    assert keys.parse(new.token) == (new.key_id, new.secret)
    assert keys.is_key_id(new.key_id)
    assert len(keys.generate().secret) == 43  # 32 bytes, base64url


def test_keys_are_unique() -> None:
    assert len({keys.generate().token for _ in range(1000)}) == 1000


@pytest.mark.parametrize("bad", ["", "il-", "sk-abc", "il-short-secret", "IL-" + "a" * 56, "il-" + "a" * 12 + "_" + "b" * 43,
                                 "il-" + "A" * 12 + "-" + "b" * 43, "il-" + "a" * 12 + "-" + "b" * 42 + "!"])
def test_malformed_keys_do_not_parse(bad: str) -> None:
    assert keys.parse(bad) is None


def test_hash_is_keyed_by_the_pepper() -> None:
    new = keys.generate()
    stored = keys.hash_secret(b"pepper-1", new.key_id, new.secret)
    assert new.secret not in stored
    assert keys.matches(b"pepper-1", new.key_id, new.secret, stored)
    assert not keys.matches(b"pepper-2", new.key_id, new.secret, stored)
    flipped = new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B")
    assert not keys.matches(b"pepper-1", new.key_id, flipped, stored)


def test_generated_pepper_is_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_pepper(settings.auth, settings.data_dir)
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_pepper(settings.auth, settings.data_dir) == first and len(first) >= 32


def test_configured_pepper_wins(tmp_path: Path) -> None:
    assert load_pepper(Settings(data_dir=tmp_path, auth={"pepper": "shared"}).auth, tmp_path) == b"shared"
    assert not (tmp_path / "secret.key").exists()
