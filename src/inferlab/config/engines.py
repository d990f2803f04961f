"""``engines:`` (the llama.cpp engines InferLab runs itself) and ``upstream:`` (the HTTP client that
talks to every engine, run by InferLab or not)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from inferlab.config.base import StrictModel


class UpstreamSettings(StrictModel):
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(300.0, gt=0, description="max silence from an engine mid-request")
    max_connections: int = Field(1024, ge=1)
    max_stream_line_bytes: int = Field(
        1024 * 1024, ge=1024, description="longest line of an engine's stream (SSE or NDJSON), else an error"
    )


class RaySettings(StrictModel):
    """Where models with ``distributed.provider: ray`` place their engine groups."""

    address: str = Field("auto", description="the Ray cluster (ray://..., host:port, or auto: the local one)")
    namespace: str = "inferlab"
    node_ip_address: str | None = Field(None, description="this gateway's node, when Ray cannot tell (nodes on loopback)")
    placement_timeout_s: float = Field(20.0, gt=0, description="wait for room on the nodes, then a shortfall")


class EngineSettings(StrictModel):
    prefer: Literal["auto", "llama-server", "llama-cpp-python"] = "auto"
    llama_server_path: Path | None = None
    cache_dir: Path = Path("~/.cache/inferlab").expanduser()
    threads: int | None = Field(None, ge=1)
    startup_timeout_s: float = Field(120.0, gt=0)
    restart_backoff_initial_s: float = Field(0.5, gt=0)
    restart_backoff_max_s: float = Field(30.0, gt=0)
    health_interval_s: float = Field(2.0, gt=0)
    group_health_interval_s: float = Field(1.0, gt=0, description="engine groups: leader health check period")
    ray: RaySettings = Field(default_factory=RaySettings)
