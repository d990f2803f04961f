"""The local model store (``inferlab models``): content-addressed blobs (``blobs/sha256/<hex>``) and
manifests naming them (``manifests/<name>/<tag>.json``), as Ollama and OCI registries keep them.

- ``store``: ``ModelStore`` — ingest, list, show, verify, remove, prune.
- ``pull``: resumable downloads over HTTP(S) with ``Range``, verified against their digest.
- ``quantize``: ``llama-quantize`` (built from the same llama.cpp sources) into a new manifest.
- ``oci_ref``, ``oci_auth``, ``oci``: pulls from OCI / Ollama registries (references, the token
  flow, manifests and blobs — redirects without credentials, resume, digest checks).
- ``convert``: safetensors → GGUF with llama.cpp's ``convert_hf_to_gguf.py``, in a Python with torch.
"""

from inferlab.modelstore.store import DigestMismatch, Manifest, ModelStore, StoreError

__all__ = ["DigestMismatch", "Manifest", "ModelStore", "StoreError"]
