"""The requests a benchmark sends: synthetic prompts or a JSONL prompt file, serialised up front."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from inferlab.benchmark.config import BenchmarkConfig

_VOCABULARY = [
    "time", "person", "year", "way", "day", "thing", "man", "world", "life", "hand", "part", "child", "eye",
    "woman", "place", "work", "week", "case", "point", "government", "company", "number", "group", "problem",
    "fact", "system", "program", "question", "night", "home", "water", "room", "mother", "area", "money",
    "story", "month", "lot", "right", "study", "book", "job", "word", "business", "issue", "side", "kind",
    "head", "house", "service", "friend", "father", "power", "hour", "game", "line", "end", "member", "law",
    "car", "city", "community", "name", "team",
]


class WorkloadError(ValueError):
    """The prompt file cannot be read as a benchmark workload."""


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One serialised request body and its prompt size in words (used when usage is missing)."""

    body: bytes
    prompt_words: int


def synthetic_prompt(rng: random.Random, index: int, words: int) -> str:
    """A distinct prompt of exactly ``words`` whitespace-separated words."""
    head = f"Request-{index}:"
    return " ".join([head, *rng.choices(_VOCABULARY, k=words - 1)]) if words > 1 else head


def _load_prompt_file(path: Path) -> list[Any]:
    """Each line: a JSON string, ``{"prompt": ...}`` or ``{"messages": [...]}``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise WorkloadError(f"cannot read prompt file {path}: {exc}") from exc
    items: list[Any] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise WorkloadError(f"{path}:{number}: not valid JSON: {exc}") from exc
        if isinstance(item, dict) and isinstance(item.get("prompt"), str):
            item = item["prompt"]
        elif isinstance(item, dict) and isinstance(item.get("messages"), list):
            item = item["messages"]
        if not isinstance(item, (str, list)):
            raise WorkloadError(f'{path}:{number}: expected a string, {{"prompt"}} or {{"messages"}}')
        items.append(item)
    if not items:
        raise WorkloadError(f"prompt file {path} has no prompts")
    return items


def _as_messages(item: str | list[Any]) -> list[Any]:
    return [{"role": "user", "content": item}] if isinstance(item, str) else item


def _as_prompt(item: str | list[Any]) -> str:
    if isinstance(item, str):
        return item
    return "\n".join(str(m.get("content", "")) for m in item if isinstance(m, dict))


def _words(item: str | list[Any]) -> int:
    return len(_as_prompt(item).split())


def _body(config: BenchmarkConfig, item: str | list[Any]) -> bytes:
    body: dict[str, Any] = {"model": config.model, "max_tokens": config.max_tokens, "stream": config.stream}
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.endpoint == "chat":
        body["messages"] = _as_messages(item)
    else:
        body["prompt"] = _as_prompt(item)
    if config.stream:
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def build_requests(config: BenchmarkConfig, count: int, *, offset: int = 0) -> list[PreparedRequest]:
    """``count`` request bodies; prompts from the file are cycled, synthetic ones are all distinct."""
    if config.prompt_file is not None:
        items = _load_prompt_file(config.prompt_file)
        chosen: list[str | list[Any]] = [items[(offset + i) % len(items)] for i in range(count)]
    else:
        rng = random.Random(config.seed * 1_000_003 + offset)
        chosen = [synthetic_prompt(rng, offset + i, config.prompt_words) for i in range(count)]
    return [PreparedRequest(_body(config, item), _words(item)) for item in chosen]
