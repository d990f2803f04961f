"""Tiers as data: a tenant's overrides merged over its tier, overrides validated field by field,
and the catalogue's precedence (shipped < configured < stored)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferlab.config import Settings
from inferlab.config.tenants import NamedTier, TierLimits, TierSpec
from inferlab.errors import InvalidRequest
from inferlab.tenants.tier import SHIPPED_TIERS, Tier, TierCatalogue, check_overrides, with_overrides


def test_overrides_replace_fields_and_merge_nested_sections_field_by_field() -> None:
    free = SHIPPED_TIERS["free"]
    merged = with_overrides(free, {"max_tokens": 64, "tenant_limits": {"rpm": 5}, "models": ["small-*"]})
    assert merged.max_tokens == 64 and merged.models == ["small-*"]
    assert merged.tenant_limits == TierLimits(rpm=5, tpm=40_000, max_concurrent=4, daily_tokens=500_000)
    assert merged.max_context_tokens == free.max_context_tokens and merged.features == free.features
    assert free.max_tokens == 512 and free.tenant_limits.rpm == 60  # the tier itself is untouched
    assert with_overrides(free, None) is free and with_overrides(free, {}) is free


def test_pools_are_replaced_whole_not_merged() -> None:
    base = TierSpec(pools={"a": {"limit_sequences": 2}, "b": {"guarantee_sequences": 1}})  # type: ignore[dict-item]
    merged = with_overrides(base, {"pools": {"c": {"limit_share": 0.25}}})
    assert set(merged.pools) == {"c"}
    tier = Tier.of("x", merged)
    assert tier.share_of("c").limit_share == 0.25
    assert tier.share_of("a") == merged.resources  # a pool without its own share: the tier-wide one


def test_check_overrides_names_the_first_bad_field() -> None:
    assert check_overrides({"max_tokens": 10, "tenant_limits": {"rpm": 1}}) == {
        "max_tokens": 10, "tenant_limits": {"rpm": 1}}
    cases = [
        ({"max_tokenz": 10}, "max_tokenz", "not a tier field"),
        ({"tenant_limits": {"rpn": 1}}, "tenant_limits.rpn", "not a tier field"),
        ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"features": ["teleport"]}, "features.0", "Input should be"),
        ({"over_cap": "shrug"}, "over_cap", "Input should be"),
        ({"models": []}, "models", "at least 1"),
    ]
    for overrides, field, message in cases:
        with pytest.raises(InvalidRequest) as raised:
            check_overrides(overrides)
        assert raised.value.param == field, overrides
        assert message in raised.value.message and raised.value.message.startswith(f"Invalid override: {field}: ")


def test_a_compiled_tier_matches_model_globs_exactly() -> None:
    tier = Tier.of("t", TierSpec(models=["pro-*", "sim-model"], features=["streaming", "streaming", "code"]))
    assert tier.allows_model("pro-large") and tier.allows_model("sim-model")
    assert not tier.allows_model("sim-model-2") and not tier.allows_model("xpro-large")
    assert not tier.allows_model("other")
    assert tier.features == frozenset({"streaming", "code"}) and tier.spec.features == ["streaming", "code"]
    assert tier.allows("code") and not tier.allows("embeddings")
    assert Tier.of("t", TierSpec(priority="critical")).priority > Tier.of("t", TierSpec(priority="low")).priority


def test_a_tier_spec_refuses_unknown_fields_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        TierSpec.model_validate({"max_tokens": 10, "maxtokens": 10})
    with pytest.raises(ValidationError):
        NamedTier.model_validate({"name": "Bad Name"})
    with pytest.raises(ValidationError):
        Settings(tenants={"tiers": [{"name": "x", "weight": 0}]})


def test_catalogue_precedence_shipped_then_configured_then_stored() -> None:
    configured = [NamedTier(name="free", max_tokens=100), NamedTier(name="team", max_tokens=2000)]
    catalogue = TierCatalogue(configured)
    assert catalogue.names() == ["enterprise", "free", "pro", "team"]
    assert catalogue.origin("pro") == "shipped" and catalogue.origin("free") == "configured"
    assert catalogue.origin("team") == "configured"
    free = catalogue.get("free")
    assert free is not None and free.max_tokens == 100 and free.max_context_tokens is None  # replaced whole
    assert catalogue.is_base("free") and catalogue.is_base("team") and not catalogue.is_base("gold")

    catalogue.use_stored({"free": TierSpec(max_tokens=7), "gold": TierSpec(priority="critical")})
    stored_free = catalogue.get("free")
    assert stored_free is not None and stored_free.max_tokens == 7
    assert catalogue.origin("free") == catalogue.origin("gold") == "stored"
    assert catalogue.names() == ["enterprise", "free", "gold", "pro", "team"]

    catalogue.use_stored({})  # the stored ones deleted: the configured one applies again
    again = catalogue.get("free")
    assert again is not None and again.max_tokens == 100 and catalogue.get("gold") is None
    assert catalogue.get("nope") is None


def test_shipped_tiers_are_ordered_by_what_they_allow() -> None:
    free, pro, enterprise = (SHIPPED_TIERS[name] for name in ("free", "pro", "enterprise"))
    assert "code" not in free.features and "code" in pro.features
    assert enterprise.max_tokens is None and enterprise.tenant_limits == TierLimits()
    assert enterprise.models == ["*"] and set(enterprise.features) >= set(pro.features) >= set(free.features)
    assert free.weight < pro.weight < enterprise.weight
    assert Settings().tenants.default_tier == "enterprise"
