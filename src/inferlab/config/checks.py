"""Names that are not settings: a key a section does not have (with the nearest one it does), and
``INFERLAB_*`` variables that name no setting. Both walk the settings model, so a new section is
covered without a change here."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

ENV_PREFIX = "INFERLAB_"
ENV_DELIMITER = "__"
# INFERLAB_* variables that are not settings: ./dev's virtualenv and the test suite's services
NOT_SETTINGS = frozenset({"INFERLAB_VENV"})
NOT_SETTINGS_PREFIXES = ("INFERLAB_TEST_",)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'port'?)`` for the closest choice, or nothing."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings section an annotation holds, looking through ``| None``, lists and dict values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _origin(annotation: Any) -> Any:
    origins = [typing.get_origin(annotation), *(typing.get_origin(a) for a in typing.get_args(annotation))]
    return next((o for o in origins if o in (list, dict)), None)


def section_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The section that ``loc`` (a pydantic error location, without its last part) points into."""
    current, key_next = model, False
    for part in loc:
        if isinstance(part, int):
            continue
        if key_next:  # a mapping's key: any name
            key_next = False
            continue
        field = current.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if field is None or inner is None:
            return None
        key_next = _origin(field.annotation) is dict
        current = inner
    return current


def unknown_setting_hint(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    section = section_at(model, loc[:-1])
    return did_you_mean(str(loc[-1]), section.model_fields) if section is not None else ""


def _env_problem(model: type[BaseModel], name: str) -> str | None:
    parts = name[len(ENV_PREFIX):].lower().split(ENV_DELIMITER)
    current, index = model, 0
    while index < len(parts):
        where = ".".join(parts[: index + 1])
        field = current.model_fields.get(parts[index])
        if field is None:
            return f"{name}: there is no setting {where}{did_you_mean(parts[index], current.model_fields)}"
        rest = len(parts) - index - 1
        if rest == 0:
            return None
        origin, inner = _origin(field.annotation), _model_in(field.annotation)
        if origin is list:
            whole = ENV_PREFIX + where.upper().replace(".", ENV_DELIMITER)
            return f"{name}: {where} is a list: set it whole, as JSON ({whole})"
        if origin is dict:
            if rest == 1:
                return None  # one entry of the mapping, by its key
            if inner is None:
                return f"{name}: {where} holds values by key, nothing deeper"
            index += 1  # skip the key
        elif inner is None:
            return f"{name}: {where} is a value, it has no sub-settings"
        current, index = inner, index + 1
    return None


def unknown_environment(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """One line per ``INFERLAB_*`` variable that names no setting of ``model``."""
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NOT_SETTINGS:
            continue
        if upper.startswith(NOT_SETTINGS_PREFIXES):
            continue
        problem = _env_problem(model, name)
        if problem is not None:
            problems.append(problem)
    return problems
