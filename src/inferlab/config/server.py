"""``server:``: the listening socket, request bounds and client timeouts."""

from __future__ import annotations

import ipaddress

from pydantic import Field

from inferlab.config.base import StrictModel


class ServerSettings(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256, description="gateway processes sharing the port (SO_REUSEPORT); more "
                                                      "than 1 needs every shared state in Redis/PostgreSQL")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="413 above this")
    drain_timeout_s: float = Field(30.0, ge=0, description="SIGTERM: how long in-flight work may finish")
    insecure_allow_remote: bool = False
    max_tokens_limit: int = Field(131072, ge=1, description="upper bound accepted for max_tokens")
    max_n: int = Field(16, ge=1, description="upper bound accepted for n")
    docs: bool = Field(True, description="/docs and the OpenAPI documents without credentials (off: no /docs, "
                                         "and the documents need a credential)")
    header_timeout_s: float = Field(10.0, gt=0, description="a request head must be in this long after its 1st byte")
    keepalive_timeout_s: float = Field(75.0, gt=0, description="close a connection idle this long between requests")
    body_timeout_s: float = Field(30.0, gt=0, description="408 when the body is not in within this (+ min rate)")
    body_min_rate_bytes_s: float = Field(1024.0, gt=0, description="each such many body bytes earn one more second")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
