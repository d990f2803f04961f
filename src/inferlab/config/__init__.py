"""Typed settings: one YAML file, a shipped profile under it, ``INFERLAB_*`` environment over it.

Settings are validated once, at start-up, and passed down as an object; nothing reads
``os.environ`` past this package.

- ``settings``: the root ``Settings``, one field per section, and the checks spanning sections.
- ``loading``: profiles, the config file, the environment, precedence (``load_settings``).
- ``checks``: unknown keys and ``INFERLAB_*`` variables, with the nearest real name.
- ``base``: ``StrictModel`` and the URL checks every section may use.
- one module per section: ``server``, ``features``, ``engines`` (with ``upstream``), ``models``
  (routing, queue, health, retry), ``auth`` (with ``jwt``), ``limits`` (rate limits and quotas),
  ``cache``, ``pricing``, ``logs``, ``tenants`` (tiers), ``resources``, ``metering``, ``scheduler``, ``slo``,
  ``browser``.
  ``responses``, ``batches``.

The sections import only ``base``; the package imports no other part of InferLab.
"""

from inferlab.config.auth import AuthSettings, JwtSettings, Role
from inferlab.config.batches import BatchSettings
from inferlab.config.browser import BrowserModelSettings, BrowserSettings
from inferlab.config.cache import CacheSettings
from inferlab.config.codelab import CodeLabSettings, RepoContextSettings
from inferlab.config.engines import EngineSettings, UpstreamSettings
from inferlab.config.features import FeatureFlags
from inferlab.config.limits import (
    FailurePolicy,
    LimitScope,
    LimitSpec,
    QuotaSettings,
    QuotaSpec,
    RateLimitFailure,
    RateLimitSettings,
)
from inferlab.config.loading import (
    PROFILES,
    ConfigError,
    deep_merge,
    format_validation_error,
    load_settings,
    read_config_file,
    read_profile,
)
from inferlab.config.logs import LoggingSettings
from inferlab.config.metering import MeteringSettings
from inferlab.config.models import (
    EMBEDDED_MODEL,
    ClassQueueSettings,
    HealthSettings,
    ModelConfig,
    PrefixRoutingSettings,
    QueueSettings,
    RetrySettings,
    RoutingSettings,
)
from inferlab.config.pricing import Price, PricingSettings
from inferlab.config.registry import JudgeSettings, RegistrySettings, VersionSeed
from inferlab.config.resources import PoolCapacitySettings, ResourceSettings
from inferlab.config.responses import ResponsesSettings
from inferlab.config.scheduler import SchedulerSettings
from inferlab.config.server import ServerSettings, is_loopback
from inferlab.config.settings import Settings
from inferlab.config.slo import SloSettings
from inferlab.config.tenants import NamedTier, TenantSettings, TierSpec

__all__ = [
    "EMBEDDED_MODEL",
    "PROFILES",
    "AuthSettings",
    "BatchSettings",
    "BrowserModelSettings",
    "BrowserSettings",
    "CacheSettings",
    "ClassQueueSettings",
    "CodeLabSettings",
    "ConfigError",
    "EngineSettings",
    "FailurePolicy",
    "FeatureFlags",
    "HealthSettings",
    "JudgeSettings",
    "JwtSettings",
    "LimitScope",
    "LimitSpec",
    "LoggingSettings",
    "MeteringSettings",
    "ModelConfig",
    "NamedTier",
    "PoolCapacitySettings",
    "PrefixRoutingSettings",
    "Price",
    "PricingSettings",
    "QueueSettings",
    "QuotaSettings",
    "QuotaSpec",
    "RateLimitFailure",
    "RateLimitSettings",
    "RegistrySettings",
    "RepoContextSettings",
    "ResourceSettings",
    "ResponsesSettings",
    "RetrySettings",
    "Role",
    "RoutingSettings",
    "SchedulerSettings",
    "ServerSettings",
    "Settings",
    "SloSettings",
    "TenantSettings",
    "TierSpec",
    "UpstreamSettings",
    "VersionSeed",
    "deep_merge",
    "format_validation_error",
    "is_loopback",
    "load_settings",
    "read_config_file",
    "read_profile",
]
