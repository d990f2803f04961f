"""Attempt bounds derived from what the engine has to do, and the settings that shape them."""

from __future__ import annotations

import pytest

from inferlab.config import load_settings
from inferlab.router import ReplicaEndpoint, RetryPolicy
from inferlab.router.build import build_pool
from inferlab.router.timeouts import TimeoutModel, attempt_deadlines, completion_tokens, prompt_tokens

from .fakes import FakeBackend

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 10}


def test_prompt_estimate_counts_every_part_of_the_prompt() -> None:
    text = "x" * 3000
    assert prompt_tokens({"prompt": text}) == 1001
    assert prompt_tokens({"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}) > 1000
    assert prompt_tokens({"input": [[1, 2, 3, 4]]}) == 5  # token ids count as tokens
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    assert prompt_tokens({"messages": [{"role": "user", "content": [image]}]}) < 2000  # an image, not 33k tokens
    assert prompt_tokens({"messages": CHAT["messages"], "tools": [{"function": {"description": text}}]}) > 1000


def test_a_deeply_nested_body_is_estimated_without_recursion() -> None:
    nested: object = "x"
    for _ in range(100_000):
        nested = [nested]
    assert prompt_tokens({"messages": nested}) >= 1


def test_completion_budget() -> None:
    assert completion_tokens({**CHAT, "n": 3}, 4096) == 30
    assert completion_tokens({"messages": []}, 4096) == 4096  # no max_tokens: the whole context
    assert completion_tokens({"input": "embed me"}, 4096) == 0


def test_defaults_bound_a_small_request_to_seconds_and_grow_with_the_prompt() -> None:
    small = attempt_deadlines(RetryPolicy(), TimeoutModel(), CHAT)
    assert 20 <= small.first_byte_s < 21 and small.idle_s == small.first_byte_s
    assert small.whole_s == pytest.approx(small.first_byte_s + 10 / 5)
    big = attempt_deadlines(RetryPolicy(), TimeoutModel(), {**CHAT, "messages": [{"role": "user", "content": "w " * 30_000}]})
    assert big.first_byte_s == pytest.approx(small.first_byte_s + 20_000 / 100, rel=0.01)


def test_explicit_bounds_win() -> None:
    policy = RetryPolicy(attempt_timeout_s=7, first_byte_timeout_s=3, stream_idle_timeout_s=1)
    assert attempt_deadlines(policy, TimeoutModel(), CHAT) == attempt_deadlines(policy, TimeoutModel(floor_s=99), CHAT)
    deadlines = attempt_deadlines(policy, TimeoutModel(), CHAT)
    assert (deadlines.first_byte_s, deadlines.whole_s, deadlines.idle_s) == (3, 7, 1)


def test_the_model_settings_reach_the_pool() -> None:
    settings = load_settings(overrides={"models": [{
        "name": "m", "backend": "openai", "url": "http://127.0.0.1:9/v1", "context_size": 8192,
        "retry": {"timeout_floor_s": 2, "prefill_tokens_per_s": 1000, "decode_tokens_per_s": 50},
    }]})
    pool = build_pool(settings.models[0], [(FakeBackend("r"), ReplicaEndpoint())], limit=1)
    assert pool.timeouts == TimeoutModel(2, 1000, 50, 8192)
    deadlines = attempt_deadlines(pool.retry_policy, pool.timeouts, CHAT)
    assert deadlines.first_byte_s < 2.1 and deadlines.whole_s < 2.4


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
    [{"role": "user", "content": "data: not a media URL, a message that starts like one"}],
    [{"role": "user", "content": [{"type": "text", "text": "parts"}]}],
    [{"role": "assistant", "content": None, "tool_calls": [{"function": {"arguments": "{}"}}]}],
    [],
])
def test_the_plain_chat_path_counts_as_the_general_walk(messages: list[dict[str, object]]) -> None:
    """A chat body of string messages is counted in one pass; it must agree with the walk that
    counts any body (here: the same messages behind a field the walk visits too)."""
    general = prompt_tokens({"prompt": messages})  # not a plain chat body: the general walk
    assert prompt_tokens({"messages": messages}) == general
