"""`inferlab engines build --tool`: each llama.cpp program is cached on its own, next to the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.coordinator.build import TOOLS, BuildError, build_llama_tool
from inferlab.coordinator.locate import built_llama_server, built_llama_tool


def test_tools_live_side_by_side_in_the_cache(tmp_path: Path) -> None:
    assert built_llama_tool(tmp_path, "llama-server") == built_llama_server(tmp_path)
    assert built_llama_tool(tmp_path, "llama-quantize").parent == built_llama_server(tmp_path).parent
    assert set(TOOLS) == {"llama-server", "llama-quantize", "rpc-server"}


def test_the_rpc_build_has_a_directory_of_its_own(tmp_path: Path) -> None:
    """GGML_RPC=ON builds llama-server and rpc-server together, beside (never over) the plain build."""
    rpc_server = built_llama_tool(tmp_path, "rpc-server", variant="rpc")
    rpc_leader = built_llama_tool(tmp_path, "llama-server", variant="rpc")
    assert rpc_server.parent == rpc_leader.parent != built_llama_server(tmp_path).parent
    assert TOOLS["rpc-server"].flags == ("-DGGML_RPC=ON",)
    assert TOOLS["rpc-server"].targets == ("llama-server", "ggml-rpc-server")  # llama.cpp's name for the worker


def test_a_cached_rpc_build_is_returned_only_when_both_programs_are_there(tmp_path: Path) -> None:
    worker = built_llama_tool(tmp_path, "rpc-server", variant="rpc")
    worker.parent.mkdir(parents=True)
    worker.write_text("#!/bin/sh\n")
    built_llama_tool(tmp_path, "llama-server", variant="rpc").write_text("#!/bin/sh\n")
    said: list[str] = []
    assert build_llama_tool(tmp_path, "rpc-server", say=said.append) == worker
    assert said == [f"rpc-server is already built: {worker}"]


def test_a_cached_tool_is_returned_without_building(tmp_path: Path) -> None:
    cached = built_llama_tool(tmp_path, "llama-quantize")
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\n")
    said: list[str] = []
    assert build_llama_tool(tmp_path, "llama-quantize", say=said.append) == cached
    assert said == [f"llama-quantize is already built: {cached}"]
    assert not built_llama_server(tmp_path).exists()  # building one tool never touches another


def test_an_unknown_tool_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="choose one of llama-server, llama-quantize, rpc-server"):
        build_llama_tool(tmp_path, "llama-cli")


def test_llama_quantize_comes_with_a_llama_server_build_but_never_forces_one(tmp_path: Path) -> None:
    """Built beside llama-server when that compiles anyway (it links the same libraries); a cached
    llama-server is returned as it is, without llama-quantize."""
    assert TOOLS["llama-server"].extras == (("llama-quantize", "llama-quantize"),)
    server = built_llama_server(tmp_path)
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\n")
    said: list[str] = []
    assert build_llama_tool(tmp_path, "llama-server", say=said.append) == server
    assert said == [f"llama-server is already built: {server}"]
    assert not built_llama_tool(tmp_path, "llama-quantize").exists()
