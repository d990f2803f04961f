"""``responses:``: the Responses API's stored responses (``POST /v1/responses`` with ``store``)."""

from __future__ import annotations

from pydantic import Field

from inferlab.config.base import StrictModel


class ResponsesSettings(StrictModel):
    enabled: bool = Field(True, description="serve /v1/responses")
    retention_s: float = Field(30 * 86_400.0, gt=0, description="how long a stored response can be read or "
                                                               "continued (previous_response_id)")
    purge_interval_s: float = Field(600.0, gt=0, description="how often expired responses are deleted")
    memory_max_entries: int = Field(10_000, ge=1, description="without a database (no auth, no metering): the "
                                                              "in-process store's bound, oldest dropped first")
