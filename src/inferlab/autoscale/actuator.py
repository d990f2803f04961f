"""The seam between a decision and the replicas: ``Actuator``.

An actuator is told the replica count wanted and moves towards it in the background (``scale``
returns at once); it reports what it has: replicas serving or starting (``replicas``), and of
those the ones ready now (``ready``). Implementations: ``LocalActuator`` (engine processes of this
gateway, ``local.py``) and ``KubernetesActuator`` (a Deployment's scale subresource,
``kubernetes.py``).
"""

from __future__ import annotations

from typing import Any, Protocol


class Actuator(Protocol):
    name: str

    def replicas(self) -> int:
        """Replicas serving or on their way (not those draining to stop)."""
        ...

    def ready(self) -> int:
        """Replicas serving now."""
        ...

    def can_start(self) -> bool:
        """False after its last attempt to start a replica failed (a pool at zero is then not "ready")."""
        ...

    async def refresh(self) -> None:
        """Read back what the replicas are (before a decision; a no-op where state is local)."""
        ...

    async def scale(self, desired: int) -> None:
        """Start moving to ``desired`` replicas; returns without waiting for engines to start or drain."""
        ...

    async def close(self) -> None:
        """Stop what it started (the gateway is stopping)."""
        ...

    def snapshot(self) -> dict[str, Any]: ...
