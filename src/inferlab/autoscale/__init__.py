"""Engine replicas that follow the load, down to zero and back (``Autoscaler``).

- ``decision``: the KPA-style decision (stable and panic windows, tolerance, stabilisation, bounds,
  idleness), pure;
- ``signals``: a pool's load signal from the router, the scheduler's queue and the engines' metrics;
- ``schedule``: scheduled bounds (weekly windows, UTC);
- ``actuator``: the ``Actuator`` seam; ``local`` (engine processes, cordon → drain → stop) and
  ``kubernetes`` (a Deployment's scale subresource);
- ``service``: the loop, the decision log and history, the cold-start activator;
- ``build``: from settings.
"""

from inferlab.autoscale.actuator import Actuator
from inferlab.autoscale.decision import Decision, Sample, ScaleDecider, ScalePolicy
from inferlab.autoscale.kubernetes import KubernetesActuator
from inferlab.autoscale.local import LocalActuator
from inferlab.autoscale.service import AutoscaleObserver, Autoscaler, PoolAutoscaler

__all__ = [
    "Actuator",
    "AutoscaleObserver",
    "Autoscaler",
    "Decision",
    "KubernetesActuator",
    "LocalActuator",
    "PoolAutoscaler",
    "Sample",
    "ScaleDecider",
    "ScalePolicy",
]
