"""Writes of one key at the same time, on every backend: upserts and creates that read the row first
each answer as if they had come one after another — never the unique key's ``IntegrityError``
(which the admin API answered as a 500: ten concurrent ``PUT /admin/tiers/x`` gave four)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from inferlab.errors import Conflict
from inferlab.ratelimit.policy import Overrides
from inferlab.registry.model import ModelVersion
from inferlab.store import Database
from inferlab.store.limits import SqlLimitStore
from inferlab.store.registry import SqlRegistryStore
from inferlab.store.tiers import SqlTierStore

WRITERS = 12


async def test_concurrent_upserts_of_one_key_all_succeed_and_one_of_them_is_kept(database: Database) -> None:
    tiers, limits = SqlTierStore(database), SqlLimitStore(database)
    now = datetime.now(UTC)
    for round_ in range(3):  # a race is not lost every time: several rounds, each on a new key
        name = f"tier-{round_}"
        await asyncio.gather(*(tiers.put_tier(name, {"description": str(i)}, now) for i in range(WRITERS)))
        assert (await tiers.all_tiers())[name]["description"] in {str(i) for i in range(WRITERS)}
        subject = ("tenant", f"t-{round_}")
        await asyncio.gather(*(limits.put(*subject, Overrides(rpm=i + 1)) for i in range(WRITERS)))
        assert (await limits.get_many([subject]))[subject].rpm in range(1, WRITERS + 1)


async def test_concurrent_creates_of_one_version_answer_added_once_then_found_or_conflict(database: Database) -> None:
    store = SqlRegistryStore(database)
    specs = [{"backend": "openai", "url": f"http://127.0.0.1:{9 + i % 2}/v1"} for i in range(WRITERS)]
    for round_ in range(3):
        version = f"v{round_}"
        outcomes = await asyncio.gather(*(store.add_version(ModelVersion("m", version, spec)) for spec in specs),
                                        return_exceptions=True)
        assert sum(outcome is True for outcome in outcomes) == 1, outcomes
        kept = (await store.load()).versions[("m", version)].spec
        for spec, outcome in zip(specs, outcomes, strict=True):
            if spec == kept:
                assert outcome is True or outcome is False  # added, or the same version found
            else:
                assert isinstance(outcome, Conflict), outcome  # versions are immutable: a 409
        aliases = await asyncio.gather(*(store.set_alias("m", f"alias-{round_}", version) for _ in range(WRITERS)))
        assert sum(aliases) == 1  # set once; the others found it set to this version already
        assert (await store.load()).aliases[("m", f"alias-{round_}")] == version
