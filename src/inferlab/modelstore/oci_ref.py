"""Registry references, as Docker and Ollama spell them: ``[registry/][namespace/]name[:tag][@sha256:<hex>]``.

The first component names a registry when it has a dot or a port, or is ``localhost``
(``ghcr.io/org/model:q4``, ``127.0.0.1:5000/smol``); otherwise the reference is on the default
registry, Ollama's (``registry.ollama.ai``), where a bare name lives in the ``library`` namespace:
``smollm2:135m`` is ``registry.ollama.ai/library/smollm2:135m``. The tag defaults to ``latest``; a
digest (``@sha256:...``) wins over the tag when both are given, and the manifest fetched for it
must hash to it. Registries on loopback are spoken to over plain HTTP, every other one over HTTPS
(``oci+http://`` forces HTTP, for a test registry on another host).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inferlab.modelstore.store import StoreError

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
# Docker wants lower-case names; Hugging Face's registry (hf.co/Org/Model-GGUF, as Ollama pulls it) does not.
_COMPONENT = re.compile(r"^[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?$")
_LOOPBACK = ("localhost", "127.", "[::1]")


@dataclass(frozen=True, slots=True)
class OciRef:
    registry: str  # host[:port]
    repository: str  # namespace/name
    tag: str
    digest: str | None = None
    scheme: str = "https"

    @property
    def reference(self) -> str:
        """What ``/v2/<repository>/manifests/<reference>`` takes: the digest when given, else the tag."""
        return self.digest or self.tag

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.registry}"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

    def local_ref(self) -> str:
        """The store's ``name:tag`` for it: the repository, lower-cased (``library/`` dropped on Ollama's registry)."""
        name = self.repository.lower()
        if self.registry == DEFAULT_REGISTRY and name.startswith(DEFAULT_NAMESPACE + "/"):
            name = name.removeprefix(DEFAULT_NAMESPACE + "/")
        return f"{name}:{self.tag}"


def parse_oci_ref(text: str) -> OciRef:
    """Parse a registry reference (``StoreError`` with the reason when it is not one)."""
    raw = text.strip()
    scheme: str | None = None
    for prefix, forced in (("oci+http://", "http"), ("oci://", None)):
        if raw.startswith(prefix):
            raw, scheme = raw.removeprefix(prefix), forced
    rest, at, digest = raw.partition("@")
    if at and not _DIGEST.match(digest):
        raise StoreError(f"{text!r}: {digest!r} is not a digest (sha256:<64 lower-case hex digits>)")
    parts = rest.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, parts = parts[0], parts[1:]
        port = registry.rpartition(":")[2] if not registry.endswith("]") else ""
        if not _HOST.match(registry) or (port.isdigit() and not 0 < int(port) < 65536):
            raise StoreError(f"{text!r}: {registry!r} is not a registry host")
    else:
        registry = DEFAULT_REGISTRY
    last = parts[-1]
    name_part, colon, tag = last.rpartition(":") if ":" in last else (last, "", "")
    parts[-1] = name_part
    if colon and not _TAG.match(tag):
        raise StoreError(f"{text!r}: {tag!r} is not a tag")
    if not all(_COMPONENT.match(part) for part in parts):
        raise StoreError(f"{text!r} is not a registry reference ([registry/][namespace/]name[:tag][@sha256:...])")
    if registry == DEFAULT_REGISTRY and len(parts) == 1:
        parts = [DEFAULT_NAMESPACE, *parts]
    repository = "/".join(parts)
    if len(repository) > 255:
        raise StoreError(f"{text!r}: the repository name is longer than 255 characters")
    if scheme is None:
        scheme = "http" if registry.startswith(_LOOPBACK) else "https"
    return OciRef(registry, repository, tag or DEFAULT_TAG, digest or None, scheme)
