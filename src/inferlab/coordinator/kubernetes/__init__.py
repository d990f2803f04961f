"""The Kubernetes provider: engine groups as manifests (rendered offline, applied with the official
client), supervised by the cluster's own controllers."""

from inferlab.coordinator.kubernetes.render import RenderOptions, render_group

__all__ = ["RenderOptions", "render_group"]
