"""What every settings section shares: the strict base model, and the URL checks of the fields that
hold one (scheme and host).

Messages never repeat a URL: it may carry a password.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A settings section: a key it does not define is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


HTTP = frozenset({"http", "https"})
REDIS = frozenset({"redis", "rediss", "unix"})
DATABASE_DRIVERS = {
    "sqlite": "sqlite+aiosqlite", "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def check_url(url: str, schemes: Collection[str], *, needs_host: bool = True) -> str:
    """``url`` when its scheme is one of ``schemes`` and it names a host; else ``ValueError``."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        expected = " or ".join(f"{scheme}://" for scheme in sorted(schemes))
        raise ValueError(f"must be a URL that starts with {expected}")
    if needs_host and not parts.hostname:
        raise ValueError(f"{parts.scheme}:// URL names no host")
    try:
        _ = parts.port  # a port that is not a number from 0 to 65535 raises
    except ValueError:
        raise ValueError("the URL's port is not a number from 0 to 65535") from None
    return url


def check_http_url(url: str | None) -> str | None:
    """The validator of an optional engine or issuer URL."""
    return check_url(url, HTTP) if url is not None else None


def check_redis_url(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "unix":
        if not urlsplit(url).path:
            raise ValueError("unix:// URL names no socket path")
        return url
    return check_url(url, REDIS)


def check_database_url(url: str) -> str:
    """The URL with its async driver (``postgresql://`` → ``postgresql+asyncpg://``); SQLite needs
    no host, PostgreSQL a host or a ``host=`` socket directory."""
    scheme, sep, rest = url.partition("://")
    driver = DATABASE_DRIVERS.get(scheme.lower())
    if not sep or driver is None:
        raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (or sqlite://, postgresql://)")
    normalised = f"{driver}://{rest}"
    if driver.startswith("postgresql"):
        parts = urlsplit(normalised)
        if not parts.hostname and not parse_qs(parts.query).get("host"):
            raise ValueError("a PostgreSQL URL needs a host (or ?host=/socket/directory)")
        check_url(normalised, {driver}, needs_host=False)
    return normalised
