"""Apply rendered objects with the official ``kubernetes`` client (server-side apply through its
dynamic client, so built-in kinds and the LeaderWorkerSet CRD go the same way)."""

from __future__ import annotations

import importlib
from typing import Any

FIELD_MANAGER = "inferlab"


def apply_manifests(manifests: list[dict[str, Any]]) -> list[str]:
    """Apply each object (the LWS controller must be installed for LeaderWorkerSets); one line per object."""
    kubernetes: Any = importlib.import_module("kubernetes")  # its functions are untyped
    importlib.import_module("kubernetes.dynamic")
    kubernetes.config.load_config()
    client = kubernetes.dynamic.DynamicClient(kubernetes.client.ApiClient())
    applied = []
    for manifest in manifests:
        resource = client.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        metadata = manifest["metadata"]
        resource.server_side_apply(body=manifest, name=metadata["name"], namespace=metadata.get("namespace"),
                                   field_manager=FIELD_MANAGER, force_conflicts=True)
        applied.append(f"{manifest['kind']}/{metadata['name']} applied")
    return applied
