from inferlab.backends.jetstream import JetStreamBackend
from inferlab.backends.llamacpp import ManagedLlamaCppBackend
from inferlab.backends.ollama import OllamaBackend
from inferlab.backends.openai_compat import OpenAICompatibleBackend

__all__ = ["JetStreamBackend", "ManagedLlamaCppBackend", "OllamaBackend", "OpenAICompatibleBackend"]
