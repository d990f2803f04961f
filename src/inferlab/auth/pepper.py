"""The pepper keyed into every API-key hash: from configuration, else ``<data_dir>/secret.key``.

Replicas that share a database must share the pepper: set ``auth.pepper`` (or
``INFERLAB_AUTH__PEPPER``) on all of them. A generated pepper is written once, mode 0600, and
reused by the server and the CLI on the same data directory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from inferlab.config import AuthSettings

PEPPER_FILE = "secret.key"


def load_pepper(auth: AuthSettings, data_dir: Path) -> bytes:
    configured = auth.pepper
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode("utf-8")
    return _file_pepper(Path(data_dir).expanduser() / PEPPER_FILE)


def previous_peppers(auth: AuthSettings) -> tuple[bytes, ...]:
    """The peppers being rotated out (docs/operations.md#rotating-the-pepper-secret)."""
    return tuple(p.get_secret_value().encode("utf-8") for p in auth.previous_peppers if p.get_secret_value())


def pepper_configured(auth: AuthSettings) -> bool:
    return auth.pepper is not None and bool(auth.pepper.get_secret_value())


def _file_pepper(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process on the same data directory won the race
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value + b"\n")
    return value
