"""Rendered manifests against the Kubernetes schemas (``kubernetes-validate``, strict: an unknown
field fails) and LeaderWorkerSets against the LWS CRD's schema (``schemas/leaderworkerset-v1.json``)
whose pod templates are checked as Kubernetes ``PodTemplateSpec``s (``kubernetes`` extra)."""

from __future__ import annotations

import importlib
import json
from importlib import resources
from typing import Any

K8S_VERSION = "1.33"


def validate_manifest(manifest: dict[str, Any], version: str = K8S_VERSION) -> None:
    """Raise ``ValueError`` naming the object and the first violation; return when it is valid."""
    checker: Any = importlib.import_module("kubernetes_validate")  # untyped: no stubs
    jsonschema: Any = importlib.import_module("jsonschema")
    try:
        if manifest.get("kind") == "LeaderWorkerSet":
            _validate_lws(manifest, version, checker.utils, jsonschema)
        else:
            checker.validate(manifest, version, strict=True)
    except (checker.ValidationError, jsonschema.ValidationError) as exc:
        where = "/".join(str(part) for part in getattr(exc, "path", ()))
        raise ValueError(f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}: {exc.message}"
                         + (f" (at {where})" if where else "")) from None


def _validate_lws(manifest: dict[str, Any], version: str, utils: Any, jsonschema: Any) -> None:
    from referencing import Registry, Resource

    chosen = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(version)][-1]
    folder = f"kubernetes-json-schema/v{chosen}-local-strict"
    registry: Registry[Any] = Registry()
    for name in ("podtemplatespec-v1.json", "_definitions.json"):  # each under its own $id
        registry = Resource.from_contents(utils.schema_contents(f"{folder}/{name}", version)) @ registry
    lws = json.loads(resources.files("inferlab.coordinator.kubernetes").joinpath(
        "schemas/leaderworkerset-v1.json").read_text())
    jsonschema.Draft202012Validator(lws, registry=registry).validate(manifest)
