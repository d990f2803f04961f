"""InferLab: a self-hosted LLM inference control plane."""

__version__ = "0.1.0"
