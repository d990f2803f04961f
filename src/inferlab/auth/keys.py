"""The API key format and its keyed hash.

A key is ``il-<keyid>-<secret>``: ``keyid`` is 12 lowercase base32 characters (public: it is the
row's primary key and shows in listings), ``secret`` is 32 random bytes in unpadded base64url.
Only ``HMAC-SHA256(pepper, keyid ":" secret)`` is stored; lookup is by key id, comparison in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "il-"
SECRET_BYTES = 32
KEY_ID_CHARS = 12
_KEY_ID = re.compile(r"^[a-z2-7]{12}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_KEY_LENGTH = len(PREFIX) + KEY_ID_CHARS + 1 + 43


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        """The full key, shown once to whoever created it."""
        return f"{PREFIX}{self.key_id}-{self.secret}"


def generate() -> NewKey:
    key_id = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()[:KEY_ID_CHARS]
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")
    return NewKey(key_id, secret)


def parse(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None (no detail: the caller answers 401)."""
    if len(token) != MAX_KEY_LENGTH or not token.startswith(PREFIX):
        return None
    key_id, dash, secret = token[len(PREFIX):].partition("-")
    if not dash or not _KEY_ID.match(key_id) or not _SECRET.match(secret):
        return None
    return key_id, secret


def is_key_id(value: str) -> bool:
    return bool(_KEY_ID.match(value))


def hash_secret(pepper: bytes, key_id: str, secret: str) -> str:
    return hmac.new(pepper, f"{key_id}:{secret}".encode("ascii"), hashlib.sha256).hexdigest()


def matches(pepper: bytes, key_id: str, secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(pepper, key_id, secret), stored_hash)
