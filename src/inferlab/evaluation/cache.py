"""Finished problems on disk, so an interrupted or extended run asks the model only for the rest.

One JSON Lines file per (server, model, suite setup): its name is a digest of the key, so a change
of anything that changes a score (the suite's ``fingerprint``: problems, prompting, sampling,
seed) starts a new file instead of mixing results. Each line is one :class:`Outcome`; only
outcomes without failed requests are written, so a resumed run retries the failures. A line
that cannot be read (a run killed mid-write) is skipped and asked again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from inferlab.evaluation.suite import Outcome

__all__ = ["OutcomeCache"]


class OutcomeCache:
    """Outcomes kept under ``directory`` (created on first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: Mapping[str, Any]) -> Path:
        digest = hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
        return self.directory / f"{digest}.jsonl"

    def load(self, key: Mapping[str, Any]) -> dict[str, Outcome]:
        path = self.path_for(key)
        if not path.is_file():
            return {}
        found: dict[str, Outcome] = {}
        for line in path.read_bytes().splitlines():
            try:
                outcome = Outcome.from_dict(orjson.loads(line))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            found[outcome.problem_id] = outcome
        return found

    def save(self, key: Mapping[str, Any], outcome: Outcome) -> None:
        if outcome.errors:
            return
        path = self.path_for(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".key.json").write_bytes(orjson.dumps(key, option=orjson.OPT_INDENT_2))
        with path.open("ab") as lines:
            lines.write(orjson.dumps(outcome.to_dict()) + b"\n")
