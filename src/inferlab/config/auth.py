"""``auth:``: API keys, the store behind them, and optional JWT bearer tokens (``auth.jwt``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from inferlab.config.base import StrictModel, check_http_url

Role = Literal["platform-admin", "tenant-admin", "member"]
RouteGroup = Literal["inference", "admin", "billing"]


def _inference_only() -> list[RouteGroup]:
    return ["inference"]


class JwtSettings(StrictModel):
    """Optional JWT bearer tokens from one issuer; off while ``issuer`` is unset."""

    issuer: str | None = None
    audience: str | None = None
    jwks_file: Path | None = Field(None, description="a JWKS document on disk")
    jwks_url: str | None = Field(None, description="the issuer's JWKS endpoint (fetched at start-up, refreshed)")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    leeway_s: float = Field(30.0, ge=0)
    tenant_claim: str = "tenant"
    role_claim: str = "role"
    role_map: dict[str, Role] = Field(default_factory=dict, description="claim value -> role (names map to themselves)")
    default_role: Role = "member"
    groups_claim: str = Field("scope", description="space-separated route groups (inference admin billing)")
    default_groups: list[RouteGroup] = Field(default_factory=_inference_only)

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, url: str | None) -> str | None:
        return check_http_url(url)

    @model_validator(mode="after")
    def _has_keys(self) -> JwtSettings:
        if self.issuer and not (self.jwks_file or self.jwks_url):
            raise ValueError("jwt.issuer needs jwt.jwks_file or jwt.jwks_url")
        if any(a.upper().startswith("HS") or a.lower() == "none" for a in self.algorithms):
            raise ValueError("jwt.algorithms: only asymmetric algorithms (RS*, ES*, PS*, EdDSA) are accepted")
        return self


class AuthSettings(StrictModel):
    """API keys and the store behind them. Replicas sharing one database must share one ``pepper``
    (config or ``INFERLAB_AUTH__PEPPER``); unset, one is generated into ``<data_dir>/secret.key``."""

    pepper: SecretStr | None = Field(None, description="server-side secret keyed into every API-key hash")
    previous_peppers: list[SecretStr] = Field(
        default_factory=list, description="peppers being rotated out: a key hashed with one still authenticates, "
                                          "and its hash is rewritten with `pepper` on that first use")
    key_cache_ttl_s: float = Field(5.0, gt=0, le=60, description="how long a validated key is trusted in-process")
    key_cache_size: int = Field(10000, ge=16)
    last_used_flush_s: float = Field(30.0, gt=0, description="last-used times are written in batches")
    store_timeout_s: float = Field(2.0, gt=0, le=60, description="bound on every database call; beyond: 503")
    store_retry_s: float = Field(1.0, gt=0, description="while the database is down, probe it this often")
    outage_grace_s: float = Field(
        300.0, ge=0, description="database down: keys validated this recently keep working (0: none do)"
    )
    auto_migrate: bool = Field(True, description="`serve` upgrades the database schema on start")
    bootstrap: bool = Field(True, description="first start: create a platform-admin key and print it once")
    protect_metrics: bool = Field(False, description="require a platform-admin credential on /metrics")
    jwt: JwtSettings = Field(default_factory=JwtSettings)
