"""What the SDK's live tests share: the configuration of a real ``inferlab serve`` process (auth,
registry, resources, rate limits, billing and the anomaly detector on; autoscaling off) in front of
the engine simulator, and ``Live``: the gateway, its bootstrap platform-admin key and the SDK calls
observed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferlab_client import CallEvent

from inferlab.testing import EngineSimulator
from inferlab.testing.gateway_process import GatewayProcess

PEPPER = "sdk-live-pepper-0123456789abcdef"
ANOMALY_INTERVAL_S = 600.0  # a fresh store: no series has the history to be judged, so no incident opens


@dataclass
class Live:
    gateway: GatewayProcess
    root: str  # the bootstrap platform-admin key
    engine_url: str
    events: list[CallEvent] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    def observe(self, event: CallEvent) -> None:
        self.events.append(event)


def live_config(sim: EngineSimulator, **extra: Any) -> dict[str, Any]:
    assert sim.base_url is not None
    return {
        "features": {"auth": True, "registry": True, "resources": True, "ratelimit": True},
        "auth": {"pepper": PEPPER, "bootstrap": True},
        "ratelimit": {"window_s": 2.0},
        "billing": {"enabled": True, "jobs": False, "plans": {"payg": [{}], "pro": [{"flat_fee": "10"}]}},
        "pricing": {"models": {"sim-model": {"input_per_million": "1", "output_per_million": "3"}}},
        "resources": {"pools": {"sim-model": {"sequences": 8, "kv_tokens": 16384}}},
        "anomaly": {"enabled": True, "interval_s": ANOMALY_INTERVAL_S, "quiet_intervals": 4},  # /admin/anomalies
        "models": [{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
        "logging": {"level": "INFO"},
        **extra,
    }
