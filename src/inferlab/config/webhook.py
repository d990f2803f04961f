"""A signed webhook's target (``inferlab.metering.alerts.WebhookSender``): where, the key, retries."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from inferlab.config.base import HTTP, StrictModel, check_url


class WebhookSettings(StrictModel):
    webhook_url: str | None = Field(None, description="POSTed a JSON body, signed (x-inferlab-signature)")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the signature")
    timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(5, ge=0, description="attempts after the first, with exponential backoff")
    backoff_s: float = Field(1.0, gt=0)

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        return check_url(url, HTTP) if url is not None else None
