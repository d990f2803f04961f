"""InferLab: a self-hosted LLM inference control plane."""

__version__ = "0.2.1"  # the one place: pyproject.toml reads it (dynamic version)
