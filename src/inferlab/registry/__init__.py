"""The model registry: immutable versions, movable aliases (``model@stable``), fallbacks, sticky
A/B tests and canaries judged by an always-valid sequential test, and hot reload of the served
pools on every gateway (``features.registry``).

- ``model``: versions, aliases, experiments, one ``RegistryState``.
- ``protocol``: ``RegistryStore`` (``inferlab.store.registry.SqlRegistryStore``).
- ``assignment``: a unit's variant by a stable hash (sticky, monotone ramp).
- ``resolve`` and ``step``: the pipeline step from a model name to a version's pool.
- ``reload``: the served versions' pools, built, started, drained and stopped as the registry changes.
- ``stats``, ``sequential``, ``judge``: per-variant figures, the mSPRT, the verdict.
- ``seed``, ``admin``, ``service``: the config seed, the admin operations, the gateway's loops.
"""

from inferlab.registry.assignment import assign, bucket
from inferlab.registry.model import Experiment, ModelVersion, RegistryState
from inferlab.registry.protocol import RegistryStore

__all__ = ["Experiment", "ModelVersion", "RegistryState", "RegistryStore", "assign", "bucket"]
