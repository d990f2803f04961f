"""``batches:``: the Batch API (``/v1/files``, ``/v1/batches``) and its background runner. Served
when the gateway has a store (``features.auth`` or ``features.metering``): batches must outlive
the process."""

from __future__ import annotations

from pydantic import Field

from inferlab.config.base import StrictModel


class BatchSettings(StrictModel):
    enabled: bool = Field(True, description="serve the Batch API (when there is a store)")
    max_file_bytes: int = Field(100 * 1024 * 1024, ge=1024, description="the largest upload to /v1/files")
    max_lines: int = Field(50_000, ge=1, description="the most requests one batch may hold")
    concurrency: int = Field(2, ge=1, le=256, description="lines of one batch in flight at once")
    reserve_slots: int = Field(1, ge=0, description="a line starts only while the model's pool has more free "
                                                    "slots than this: room kept for interactive requests")
    lease_s: float = Field(30.0, gt=0, description="a runner's hold on a batch; another gateway takes the "
                                                   "batch over once it ran out (renewed every third of it)")
    poll_s: float = Field(1.0, gt=0, description="how often the runner looks for work without being told")
    idle_poll_s: float = Field(15.0, gt=0, description="the longest wait between looks while no batch has come: "
                                                       "the wait doubles from poll_s up to this (at most lease_s); "
                                                       "a batch created on this gateway wakes the runner at once")
    max_attempts: int = Field(20, ge=1, description="tries of a line shed or refused for load (429/503)")
    retry_initial_s: float = Field(0.5, gt=0, description="the first wait before such a retry (doubling)")
    retry_max_s: float = Field(10.0, gt=0, description="the longest wait between retries")
    completion_window: str = Field("24h", description="the only completion window accepted")
