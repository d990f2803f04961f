"""``idempotency:``: the ``Idempotency-Key`` header on admin and customer POST/PUT/PATCH/DELETE
routes (``inferlab.idempotency``)."""

from __future__ import annotations

from pydantic import Field

from inferlab.config.base import StrictModel


class IdempotencySettings(StrictModel):
    enabled: bool = Field(True, description="honour Idempotency-Key on admin and customer writes (never on the "
                                            "inference routes)")
    ttl_s: float = Field(86_400.0, gt=0, description="how long a key's stored response is replayed")
    lock_timeout_s: float = Field(300.0, gt=0, description="a key whose first request has run this long without "
                                                          "an answer (the process died) may be taken over")
    purge_interval_s: float = Field(600.0, gt=0, description="how often expired keys are deleted")
    max_response_bytes: int = Field(1_048_576, ge=1, description="a larger response is not stored (the key is "
                                                                "released, as after a 5xx)")
    memory_max_entries: int = Field(10_000, ge=1, description="without a database: the in-process store's "
                                                              "bound, oldest dropped first")
