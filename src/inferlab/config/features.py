"""``features:``: the capabilities switched on or off as a whole."""

from __future__ import annotations

from pydantic import Field

from inferlab.config.base import StrictModel


class FeatureFlags(StrictModel):
    metrics: bool = True
    auth: bool = Field(False, description="API keys / JWT on every route but /health, /ready, /metrics "
                                          "(and /docs, /openapi.json, /admin/openapi.json while server.docs)")
    planning_api: bool = True
    ratelimit: bool = Field(False, description="rate limits (ratelimit:) on the inference routes")
    cache: bool = Field(False, description="exact-match response cache (cache:) for deterministic requests")
    resources: bool = Field(False, description="per-tenant shares of each pool's capacity (resources:)")
    slo: bool = Field(True, description="SLO attainment per tier and model (slo:), GET /admin/slo and the "
                                        "inferlab_slo_* metrics")
    metering: bool = Field(True, description="one usage event per request, made durable and shipped to the store "
                                             "(metering:)")
    registry: bool = Field(False, description="model registry (registry:): versions, aliases, experiments, "
                                              "hot reload from the store")
    browser: bool = Field(False, description="the browser hybrid (browser:): the browser model catalogue and its GGUF "
                                             "files, local usage reports, the server-fallback policy, /playground")
