"""``codelab:``: the coding assistant on top of the gateway (``/v1/code/...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from inferlab.config.base import StrictModel

TierName = Literal["small", "medium", "large"]


class RepoContextSettings(StrictModel):
    """Repository retrieval for completions (``git_url`` names an indexed repository)."""

    enabled: bool = True
    budget_tokens: int = Field(1024, ge=0, description="tokens of other files' chunks put in front of the FIM prompt")
    max_hits: int = Field(8, ge=0)
    max_hits_per_file: int = Field(2, ge=1)
    embedding_model: str | None = Field(None, description="a served model for /v1/embeddings; none: BM25 alone")
    query_embed_timeout_s: float = Field(0.5, gt=0, description="longest wait for a completion's query embedding; "
                                                                 "beyond it, BM25 alone rather than a late completion")
    root: Path | None = Field(None, description="where indexes are kept (clones, chunks); default <data_dir>/codelab")
    refresh_interval_s: float = Field(30.0, gt=0, description="how often indexed repositories are checked for new commits")


class CodeLabSettings(StrictModel):
    enabled: bool = True
    completion_model: str | None = Field(None, description="default model of /v1/code/completions; "
                                                           "none: the medium tier, else the first model")
    tiers: dict[TierName, str] = Field(default_factory=dict, description="small / medium / large → a model name")
    thresholds: Path | None = Field(None, description="the routing classifier's calibrated thresholds (JSON); "
                                                     "none: the calibration shipped in inferlab/code/data")
    tier_overrides: dict[TierName, TierName] = Field(default_factory=dict,
                                                     description="a decided tier → the tier to use instead")
    max_tokens: int = Field(256, ge=1, description="largest max_tokens of a code completion")
    context: RepoContextSettings = Field(default_factory=RepoContextSettings)
