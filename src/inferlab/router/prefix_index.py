"""An approximate, LRU-bounded index of which replica has seen which prompt prefix.

The gateway cannot see an engine's KV cache, so it remembers what it sent where: a prompt is cut
into fixed-size character blocks, each block's hash chained with its predecessor's (so a hash
names the whole prefix up to that block, as vLLM's block hashes do), and each replica keeps an LRU
set of the chained hashes it was sent. The match of a prompt on a replica is the number of leading
blocks the replica holds. An inverted map (hash → replicas holding it) makes matching cost
proportional to the matched blocks, not to the number of replicas.

Characters stand in for tokens: the index never tokenises, and a block of ``block_chars``
characters is a few dozen tokens for most tokenisers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

DEFAULT_BLOCK_CHARS = 256
DEFAULT_MAX_BLOCKS = 64


def prompt_text(body: dict[str, Any]) -> str:
    """The text whose prefix an engine can cache: chat messages flattened in order, or the prompt."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts: list[str] = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            parts.append(f"{message.get('role', '')}:{content if isinstance(content, str) else ''}\x1e")
        return "".join(parts)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return str(prompt[0])
    return ""


def block_hashes(text: str, block_chars: int = DEFAULT_BLOCK_CHARS, max_blocks: int = DEFAULT_MAX_BLOCKS) -> tuple[int, ...]:
    """Chained hashes of the whole blocks of ``text`` (a trailing partial block is not cacheable)."""
    count = min(len(text) // block_chars, max_blocks)
    hashes: list[int] = []
    previous = 0
    for start in range(0, count * block_chars, block_chars):
        previous = hash((previous, text[start:start + block_chars]))
        hashes.append(previous)
    return tuple(hashes)


class PrefixIndex:
    """Per-replica LRU sets of block hashes plus the inverted map used to match prompts."""

    def __init__(self, capacity_blocks: int = 16384) -> None:
        if capacity_blocks < 1:
            raise ValueError("capacity_blocks must be at least 1")
        self.capacity_blocks = capacity_blocks
        self._lru: dict[str, OrderedDict[int, None]] = {}
        self._holders: dict[int, set[str]] = {}

    def match(self, hashes: Sequence[int]) -> dict[str, int]:
        """Replica name → number of leading blocks of ``hashes`` it holds (only replicas with ≥ 1)."""
        matched: dict[str, int] = {}
        holders = self._holders
        for depth, block in enumerate(hashes):
            owners = holders.get(block)
            if not owners:
                break
            extended = False
            for owner in owners:
                if matched.get(owner, 0) == depth:
                    matched[owner] = depth + 1
                    extended = True
            if not extended:
                break
        return matched

    def insert(self, replica: str, hashes: Sequence[int]) -> None:
        """Record that ``replica`` was sent this prefix (refreshing its blocks in the LRU)."""
        lru = self._lru.get(replica)
        if lru is None:
            lru = self._lru[replica] = OrderedDict()
        holders = self._holders
        for block in hashes:
            if block in lru:
                lru.move_to_end(block)
                continue
            lru[block] = None
            owners = holders.get(block)
            if owners is None:
                holders[block] = {replica}
            else:
                owners.add(replica)
        while len(lru) > self.capacity_blocks:
            evicted, _ = lru.popitem(last=False)
            owners = holders.get(evicted)
            if owners is not None:
                owners.discard(replica)
                if not owners:
                    del holders[evicted]

    def forget(self, replica: str) -> None:
        """Drop everything known about a replica (it restarted: its cache is gone)."""
        lru = self._lru.pop(replica, None)
        if not lru:
            return
        for block in lru:
            owners = self._holders.get(block)
            if owners is not None:
                owners.discard(replica)
                if not owners:
                    del self._holders[block]

    def size(self, replica: str) -> int:
        lru = self._lru.get(replica)
        return len(lru) if lru is not None else 0
