"""The request bodies of InferLab's API as ``TypedDict``s (generated from its OpenAPI documents):
``from inferlab_client.types import KeyIn, TenantIn``."""

from inferlab_client._generated import *  # noqa: F403
from inferlab_client._generated import __all__  # noqa: F401  (re-exported)
