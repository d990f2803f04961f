"""``inferlab.example.yaml`` documents every setting there is, and loads as it stands."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from inferlab.config import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[3] / "inferlab.example.yaml"
# a key line, live or commented out: `key:`, `- key:`, `# key:`, `#   - key:`
KEY_LINE = re.compile(r"^(?P<indent>[ #]*(?:- )?)(?P<key>[a-z_][a-z0-9_]*):(?:\s|$)")


def section(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is dict:
        return None  # keyed by the user's own names (pricing.models): the value type is shown elsewhere
    return next((found for arg in typing.get_args(annotation) if (found := section(arg)) is not None), None)


def setting_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        yield prefix + name
        inner = section(field.annotation)
        if inner is not None:
            yield from setting_paths(inner, f"{prefix}{name}.")


def documented_paths(text: str) -> set[str]:
    """Every key path the file shows, live or in a commented-out example, from its indentation."""
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = KEY_LINE.match(line)
        if match is None:
            continue
        column = len(match.group("indent").replace("# ", "", 1))  # `# - key` sits where `- key` would
        while stack and stack[-1][0] >= column:
            stack.pop()
        stack.append((column, match.group("key")))
        paths.add(".".join(key for _, key in stack))
    return paths


def test_every_setting_is_documented_in_the_example() -> None:
    documented = documented_paths(EXAMPLE.read_text())
    missing = [path for path in setting_paths(Settings) if path not in documented]
    assert not missing, f"inferlab.example.yaml does not document: {', '.join(missing)}"


def test_the_example_file_loads() -> None:
    settings = load_settings(EXAMPLE)
    assert [m.name for m in settings.models] == ["smollm2-135m"]
