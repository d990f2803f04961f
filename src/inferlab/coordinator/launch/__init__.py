"""Command lines for each engine's group, generated from one ``DeploymentSpec``.

``process`` targets run through a provider here (``{host}``/``{port}`` placeholders, filled at
start); ``pod`` targets are for Kubernetes manifests (fixed ports, peers by DNS name, ``$(VAR)``
from the pod's environment). Each module checks its flags against the engine's documentation in
tests/unit/coordinator/test_launch_flags.py.
"""

from inferlab.coordinator.launch.common import Target, group_plan

__all__ = ["Target", "group_plan"]
