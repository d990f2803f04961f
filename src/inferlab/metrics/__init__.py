from inferlab.metrics.prometheus import GatewayMetrics

__all__ = ["GatewayMetrics"]
