"""`inferlab engines build --tool`: each llama.cpp program is cached on its own, next to the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.coordinator.build import TOOLS, BuildError, build_llama_tool
from inferlab.coordinator.locate import built_llama_server, built_llama_tool


def test_tools_live_side_by_side_in_the_cache(tmp_path: Path) -> None:
    assert built_llama_tool(tmp_path, "llama-server") == built_llama_server(tmp_path)
    assert built_llama_tool(tmp_path, "llama-quantize").parent == built_llama_server(tmp_path).parent
    assert set(TOOLS) == {"llama-server", "llama-quantize"}


def test_a_cached_tool_is_returned_without_building(tmp_path: Path) -> None:
    cached = built_llama_tool(tmp_path, "llama-quantize")
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\n")
    said: list[str] = []
    assert build_llama_tool(tmp_path, "llama-quantize", say=said.append) == cached
    assert said == [f"llama-quantize is already built: {cached}"]
    assert not built_llama_server(tmp_path).exists()  # building one tool never touches another


def test_an_unknown_tool_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="choose one of llama-server, llama-quantize"):
        build_llama_tool(tmp_path, "llama-cli")
