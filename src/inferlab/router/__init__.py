from inferlab.router.pool import BackendPool, ModelRouter

__all__ = ["BackendPool", "ModelRouter"]
