from __future__ import annotations

from inferlab.code.bm25 import terms
from inferlab.code.chunking import Chunker
from inferlab.code.repo_index import RepoIndex, cursor_query, cursor_symbol

SOURCE = "import os\n\nLIMIT = 3\n\n\nclass Store:\n" + "".join(
    f"    def get_{i}(self, key):\n        return key * {i}\n\n" for i in range(40)) + "\ndef top(value):\n    return value\n"


def test_definitions_are_chunks_and_a_long_class_is_opened_into_members() -> None:
    chunks = Chunker(max_lines=30).chunk("pkg/store.py", SOURCE)
    symbols = [c.symbols for c in chunks]
    assert ("Store",) in symbols and ("get_7", "Store.get_7") in symbols and ("top",) in symbols
    assert chunks[0].text.startswith("import os") and "LIMIT = 3" in chunks[0].text
    lines = SOURCE.split("\n")
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1:chunk.end_line])


def test_unknown_languages_are_cut_into_line_windows() -> None:
    chunks = Chunker(max_lines=10).chunk("notes.txt", "\n".join(f"line {i}" for i in range(25)))
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 10), (11, 20), (21, 25)]


def test_search_excludes_the_edited_file_and_keeps_two_hits_per_file() -> None:
    index = RepoIndex("demo", Chunker(max_lines=30))
    index.put_files({"pkg/store.py": SOURCE, "pkg/use.py": "from pkg.store import Store\nstore = Store()\nstore.get_7(1)\n"})
    hits = index.search(cursor_query("value = store.get_7("), symbol=cursor_symbol("value = store.get_7("), limit=8)
    assert hits[0].chunk.symbols == ("get_7", "Store.get_7")
    assert all(sum(h.chunk.path == p for h in hits) <= 2 for p in ("pkg/store.py", "pkg/use.py"))
    assert all(h.chunk.path != "pkg/store.py" for h in index.search({"get": 1.0}, exclude_path="pkg/store.py"))
    index.remove_paths(["pkg/store.py"])
    assert index.chunks_of("pkg/store.py") == [] and "getValue" not in terms("getValue")
