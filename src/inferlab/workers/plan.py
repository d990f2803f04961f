"""What ``serve --workers N`` may share, and what each worker gets of its own — pure functions over
the settings, so the refusal and the per-worker differences are tested without a process.

Every worker is a whole gateway behind the same port. State that must be one for the host (rate
limits, quotas, resource shares, keys, tenants, usage) has to live where every worker sees it:
Redis and PostgreSQL. A configuration that would keep it per process is refused with the reason,
rather than silently admitting N times a limit. State that may be per worker without being wrong
(the response cache, fair-queuing counters, SLO windows, CodeLab's repository indexes — as with
several pods) stays per worker; the usage outbox and CodeLab's clones, local files, are one per
worker.
"""

from __future__ import annotations

from pathlib import Path

from inferlab.config import Settings
from inferlab.store.engine import is_sqlite

OUTBOX_FILE = "usage-outbox.db"


def multi_worker_problems(settings: Settings) -> list[str]:
    """Why these settings cannot run as several workers (empty: they can)."""
    workers = settings.server.workers
    if workers <= 1:
        return []
    from inferlab.ratelimit.build import uses_redis as limits_use_redis

    redis = settings.redis_url is not None
    problems: list[str] = []
    if settings.features.ratelimit and not limits_use_redis(settings.ratelimit, redis):
        problems.append(f"ratelimit: limits and quotas kept in process memory would let each of the {workers} workers "
                        "admit the whole limit; set redis_url (ratelimit.backend auto or redis)")
    if settings.features.resources and (settings.resources.backend == "memory" or not redis):
        problems.append("resources: tenants' capacity shares kept in process memory would be counted per worker; "
                        "set redis_url (resources.backend auto or redis)")
    url = settings.database_url.get_secret_value() if settings.database_url is not None else None
    users = [name for name, on in (("auth", settings.features.auth), ("metering", settings.features.metering)) if on]
    if users and (url is None or is_sqlite(url)):
        problems.append(f"database_url: {' and '.join(users)} would write one SQLite file from {workers} processes "
                        "(migrations race, writers lock each other out); set database_url to PostgreSQL "
                        "(postgresql+asyncpg://...)" + (", or turn features.metering off" if users == ["metering"] else ""))
    if settings.usage.analytics.backend == "chdb":
        problems.append("usage.analytics.backend chdb: ClickHouse in process opens one data directory per process; "
                        "use backend clickhouse (a server) or store")
    problems += [f"models ({model.name}): engine groups (distributed:) are not yet run by the workers' supervisor; "
                 "use --workers 1" for model in settings.models if model.distributed is not None]
    return problems


def worker_settings(settings: Settings, index: int) -> Settings:
    """Worker ``index``'s settings: the same gateway, with a usage outbox of its own (a restarted
    worker takes over its predecessor's file, so no event is left behind) and a directory of its
    own for CodeLab's clones."""
    data_dir = Path(settings.data_dir)
    outbox = settings.metering.outbox_path or data_dir / OUTBOX_FILE
    own_outbox = outbox.with_name(f"{outbox.stem}.worker-{index}{outbox.suffix}")
    code_root = (settings.codelab.context.root or data_dir / "codelab") / f"worker-{index}"
    context = settings.codelab.context.model_copy(update={"root": code_root})
    return settings.model_copy(update={
        "metering": settings.metering.model_copy(update={"outbox_path": own_outbox}),
        "codelab": settings.codelab.model_copy(update={"context": context}),
    })
