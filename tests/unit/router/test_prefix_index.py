from __future__ import annotations

from inferlab.router import PrefixIndex, block_hashes, prompt_text


def test_block_hashes_chain_so_equal_blocks_after_different_prefixes_differ() -> None:
    a = block_hashes("x" * 64 + "y" * 64, block_chars=64)
    b = block_hashes("z" * 64 + "y" * 64, block_chars=64)
    assert len(a) == 2 and a[1] != b[1]
    assert block_hashes("short", block_chars=64) == ()


def test_prompt_text_flattens_chat_and_completion() -> None:
    assert prompt_text({"prompt": "abc"}) == "abc"
    text = prompt_text({"messages": [{"role": "system", "content": "S"},
                                     {"role": "user", "content": [{"type": "text", "text": "U"}]}]})
    assert "S" in text and "U" in text and text.index("S") < text.index("U")


def test_match_counts_leading_blocks_only() -> None:
    index = PrefixIndex()
    hashes = block_hashes("a" * 40 + "b" * 40 + "c" * 40, block_chars=40)
    index.insert("r1", hashes[:2])
    index.insert("r2", hashes[:1])
    assert index.match(hashes) == {"r1": 2, "r2": 1}
    other = block_hashes("q" * 40 + "b" * 40, block_chars=40)
    assert index.match(other) == {}


def test_lru_bound_evicts_oldest_blocks_and_cleans_the_inverted_map() -> None:
    index = PrefixIndex(capacity_blocks=4)
    old = block_hashes("o" * 400, block_chars=100)
    new = block_hashes("n" * 400, block_chars=100)
    index.insert("r", old)
    index.insert("r", new)
    assert index.size("r") == 4
    assert index.match(old) == {} and index.match(new) == {"r": 4}
    index.forget("r")
    assert index.match(new) == {} and index.size("r") == 0
