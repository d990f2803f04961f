"""CodeLab's wiring: each model's FIM policy (from its settings and, for a llama.cpp model, its GGUF),
and the CodeLab parts built from ``codelab:``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from inferlab.code.assist import CodeAssist
from inferlab.code.completions import DECISION_NOTE, CodeCompletions, ModelChooser
from inferlab.code.context import ChainEmbedder, RepoContext
from inferlab.code.fim import GGUF_TEMPLATE, fim_template
from inferlab.code.gguf_fim import read_gguf_fim
from inferlab.code.repositories import RepoIndexes
from inferlab.code.routing import SHIPPED_THRESHOLDS, CodeTask, ComplexityRouter, Thresholds
from inferlab.code.step import FimPolicy
from inferlab.code.telemetry import CompletionTelemetry, EventCounter
from inferlab.config import CodeLabSettings, EngineSettings, ModelConfig, Settings
from inferlab.coordinator.locate import EngineUnavailable, find_llama_server, resolve_model_path
from inferlab.errors import InferLabError
from inferlab.pipeline import Call, Chain


def fim_policy(model: ModelConfig, engines: EngineSettings, logger: logging.Logger) -> FimPolicy:
    """The GGUF's own FIM tokens when it has them (llama-server's /infill then builds the prompt from
    ids; the llama-cpp-python fall-back gets it rendered); else the configured family; else none."""
    configured = fim_template(model.fim_template) if model.fim_template not in (None, GGUF_TEMPLATE) else None
    if model.backend != "llamacpp":
        return FimPolicy(template=configured, engine_handles_suffix=True)
    found = None
    if model.path:
        try:
            found = read_gguf_fim(resolve_model_path(model.path))
        except (EngineUnavailable, ImportError, OSError, ValueError) as exc:
            logger.info("FIM tokens of %s not read from its GGUF: %s", model.name, exc)
    if found is None:
        if model.fim_template == GGUF_TEMPLATE:
            logger.warning("model %s: fim_template is gguf but its GGUF has no FIM tokens; suffix is refused", model.name)
        return FimPolicy(template=configured)
    template = found.template(f"gguf:{model.name}")
    if configured is not None and configured.special != template.special:
        logger.warning("model %s: its GGUF declares FIM tokens %s, not %s's; the GGUF's are used",
                       model.name, template.special, configured.name)
    infill = engines.prefer != "llama-cpp-python" and find_llama_server(engines) is not None
    return FimPolicy(template=None if infill else template, engine_infill=infill, stop=template.stop)


@dataclass
class CodeLab:
    """CodeLab's parts: the completion step (first in the chain), the telemetry it feeds, the
    tenants' repository indexes and the context step that searches them."""

    telemetry: CompletionTelemetry
    completions: CodeCompletions
    settings: CodeLabSettings
    repos: RepoIndexes
    context: RepoContext
    embedder: ChainEmbedder | None
    assist: CodeAssist
    router: ComplexityRouter

    async def keep_indexes_fresh(self) -> None:
        """Re-index every indexed repository on new commits (changed files only)."""
        log = logging.getLogger("inferlab.code")
        while True:
            await asyncio.sleep(self.settings.context.refresh_interval_s)
            for tenant, repo in self.repos.all():
                try:
                    await self.repos.index(tenant, repo.source)
                except InferLabError as exc:  # a repository gone or broken: retried next time
                    log.warning("re-indexing %s failed: %s", repo.source, exc.message)


def model_chooser(router: ComplexityRouter) -> ModelChooser:
    """The model of a request: the router's decision, left on the call (returned with the answer)."""

    def choose(task: CodeTask, call: Call) -> str:
        decision = router.decide(task)
        call.notes[DECISION_NOTE] = decision.to_json()
        return decision.model

    return choose


def complexity_router(settings: Settings, telemetry: CompletionTelemetry) -> ComplexityRouter:
    code = settings.codelab
    thresholds = Thresholds.load(code.thresholds if code.thresholds is not None else SHIPPED_THRESHOLDS)
    fallback = code.completion_model or (settings.models[0].name if settings.models else None)
    return ComplexityRouter(thresholds, code.tiers, fallback=fallback, acceptance=telemetry.acceptance,
                            overrides=code.tier_overrides)


def build_codelab(settings: Settings, counter: EventCounter | None, chain: Callable[[], Chain]) -> CodeLab | None:
    """``chain``: the gateway's chain once built (repository embeddings go through it)."""
    if not settings.codelab.enabled:
        return None
    telemetry = CompletionTelemetry(counter=counter)
    router = complexity_router(settings, telemetry)
    chooser = model_chooser(router)
    context = settings.codelab.context
    repos = RepoIndexes(context.root or settings.data_dir / "codelab")
    embedder = ChainEmbedder(chain, context.embedding_model) if context.embedding_model else None
    return CodeLab(telemetry, CodeCompletions(chooser, telemetry), settings.codelab, repos,
                   RepoContext(repos, context, embedder), embedder, CodeAssist(chooser), router)
