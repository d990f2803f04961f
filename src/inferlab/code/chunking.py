"""Source files cut into chunks at syntax boundaries (tree-sitter, ``tree-sitter-language-pack``).

Each definition at the top of a file (function, class, impl, type...) is a chunk of its own, with
the names it defines; the statements between definitions (imports, constants) are grouped into
chunks of at most ``max_lines``. A definition longer than that is opened: a class becomes its
header plus one chunk per member; anything else is cut into line windows. A file in a language
the pack does not parse is cut into line windows, so nothing is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

EXTENSIONS = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".jsx": "javascript", ".ts": "typescript",
    ".tsx": "tsx", ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp",
    ".cpp": "cpp", ".hpp": "cpp", ".rb": "ruby", ".php": "php", ".kt": "kotlin", ".scala": "scala",
    ".cs": "csharp", ".swift": "swift", ".lua": "lua", ".sh": "bash",
}
_DEFINITION = re.compile(r"(function|method|class|struct|enum|interface|impl|trait|type|module|decorated)"
                         r"_(definition|declaration|item|spec)$|^(decorated_definition|function_item|impl_item|"
                         r"type_declaration|lexical_declaration|export_statement)$")
_CONTAINER = re.compile(r"class|impl|trait|interface|struct|module|decorated")
_BODY_FIELDS = ("body", "definition")


@dataclass(frozen=True, slots=True)
class Chunk:
    path: str
    start_line: int  # 1-based, inclusive
    end_line: int
    text: str
    symbols: tuple[str, ...] = ()
    language: str = ""


def language_of(path: str) -> str | None:
    return EXTENSIONS.get(PurePosixPath(path).suffix.lower())


def _parser(language: str) -> Any | None:
    try:
        from tree_sitter_language_pack import get_parser
    except ImportError:
        return None
    try:
        return get_parser(language)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a grammar the pack lacks (or fails to load) means line windows
        return None


def _name(node: Any) -> str | None:
    named = node.child_by_field_name("name")
    if named is not None:
        return str(named.text.decode("utf-8", "replace"))
    for child in node.named_children:  # decorated definitions, export statements, type declarations
        if _DEFINITION.search(child.type) or child.type.endswith("_spec") or child.type == "variable_declarator":
            found = _name(child)
            if found:
                return found
    return None


def _body(node: Any) -> Any | None:
    for field in _BODY_FIELDS:
        body = node.child_by_field_name(field)
        if body is not None:
            return body
    for child in node.named_children:
        if _CONTAINER.search(child.type):
            return _body(child)
    return None


class Chunker:
    def __init__(self, max_lines: int = 60) -> None:
        self.max_lines = max_lines
        self._parsers: dict[str, Any | None] = {}

    def chunk(self, path: str, text: str) -> list[Chunk]:
        language = language_of(path) or ""
        lines = text.split("\n")
        parser = self._parsers.setdefault(language, _parser(language)) if language else None
        if parser is None:
            return self._windows(path, lines, 0, len(lines), language, ())
        tree = parser.parse(text.encode("utf-8"))
        return self._nodes(path, lines, tree.root_node.children, language, 0, len(lines), prefix="")

    def _nodes(self, path: str, lines: list[str], nodes: list[Any], language: str, start: int, end: int,
               prefix: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        loose_from: int | None = None
        cursor = start
        for node in nodes:
            first, last = node.start_point[0], node.end_point[0]
            if not node.is_named or not _DEFINITION.search(node.type):
                loose_from = cursor if loose_from is None else loose_from
                cursor = max(cursor, last + 1)
                continue
            if loose_from is not None and first > loose_from:
                chunks += self._windows(path, lines, loose_from, first, language, ())
            loose_from = None
            chunks += self._definition(path, lines, node, language, max(first, cursor), last + 1, prefix)
            cursor = max(cursor, last + 1)
        if loose_from is not None or cursor < end:
            chunks += self._windows(path, lines, loose_from if loose_from is not None else cursor, end, language, ())
        return chunks

    def _definition(self, path: str, lines: list[str], node: Any, language: str, first: int, stop: int,
                    prefix: str) -> list[Chunk]:
        name = _name(node)
        symbols = tuple(s for s in (name, f"{prefix}{name}" if prefix and name else None) if s)
        if stop - first <= self.max_lines:
            return [self._make(path, lines, first, stop, symbols, language)]
        body = _body(node) if _CONTAINER.search(node.type) else None
        if body is None or not body.named_children:
            return self._windows(path, lines, first, stop, language, symbols)
        opened = body.named_children[0].start_point[0]
        head = [self._make(path, lines, first, max(first + 1, opened), symbols, language)]
        inner = f"{prefix}{name}." if name else prefix
        return head + self._nodes(path, lines, body.children, language, opened, stop, inner)

    def _windows(self, path: str, lines: list[str], start: int, end: int, language: str,
                 symbols: tuple[str, ...]) -> list[Chunk]:
        chunks = []
        for first in range(start, end, self.max_lines):
            chunk = self._make(path, lines, first, min(end, first + self.max_lines), symbols, language)
            if chunk.text.strip():
                chunks.append(chunk)
        return chunks

    @staticmethod
    def _make(path: str, lines: list[str], first: int, stop: int, symbols: tuple[str, ...], language: str) -> Chunk:
        return Chunk(path, first + 1, stop, "\n".join(lines[first:stop]), symbols, language)
