"""``web:``: the dashboards InferLab serves under ``/ui`` (``inferlab.web``).

On by default, as the admin consoles of comparable gateways are: the pages are mounted only when
``features.auth`` is on (every page acts as a signed-in principal; without identities there is
nobody to sign in), so the laptop profile serves none. Sessions are signed cookies holding the key
id (never the key); the signing secret defaults to one derived from the API-key pepper, which
replicas already share.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from inferlab.config.base import StrictModel


class WebSettings(StrictModel):
    enabled: bool = Field(True, description="serve the admin and customer dashboards under /ui (needs features.auth)")
    session_ttl_s: int = Field(8 * 3600, ge=60, le=30 * 86400,
                               description="how long a dashboard session lasts after sign-in (seconds)")
    secure_cookie: bool = Field(False, description="mark the session cookie Secure (set it when served over HTTPS)")
    session_secret: SecretStr | None = Field(
        None, description="signs session cookies; default: derived from auth.pepper (replicas share it)")
    refresh_s: int = Field(15, ge=0, le=3600, description="how often live panels re-fetch (0: never)")
    platform_cache_s: float = Field(
        10.0, ge=0, le=3600, description="the admin pages' every-tenant usage figures are kept this long and shared "
                                         "by concurrent viewers (0: a query per page load); tenants' figures never are")
