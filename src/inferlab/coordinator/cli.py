"""``inferlab deploy plan | render | apply``: an engine spec from the planning toolkit, as a command
line, as Kubernetes manifests (offline), or applied to a cluster with the official client."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import typer
import yaml
from rich.console import Console

from inferlab.errors import InferLabError

deploy_app = typer.Typer(help="Plan, render and apply engine deployments (groups across GPUs and nodes).",
                         no_args_is_help=True)

ModelArg = typer.Argument(None, help="catalogue model id (see `inferlab plan`)")
GpuOpt = typer.Option("h100-sxm", "--gpu", help="catalogue accelerator id")
GpusOpt = typer.Option(1, "--gpus", help="GPUs for one copy of the model")
EngineOpt = typer.Option("vllm", "--engine", help="vllm, sglang or llama.cpp")
QuantOpt = typer.Option(None, "--quant", help="weight format: bf16, fp8, int4, Q4_K_M...")
KvOpt = typer.Option("f16", "--kv-dtype", help="KV cache type: f16, fp8, q8_0...")
ContextOpt = typer.Option(8192, "--context", help="tokens per sequence the engine holds")
PerNodeOpt = typer.Option(None, "--gpus-per-node", help="GPUs per node (default: the accelerator's node size)")
PathOpt = typer.Option(None, "--model-path", help="what the engine loads (default: the Hugging Face id, or a GGUF)")
ScenarioOpt = typer.Option(None, "--scenario", help="one of the seed scenarios instead of MODEL")


def _request(model: str | None, scenario: str | None, **options: Any) -> Any:
    from inferlab.coordinator.planner import PlanRequest
    from inferlab.coordinator.scenarios import SEED_DEPLOYMENTS

    if scenario is not None:
        if scenario not in SEED_DEPLOYMENTS:
            raise typer.BadParameter(f"unknown scenario; choose one of {', '.join(SEED_DEPLOYMENTS)}")
        return SEED_DEPLOYMENTS[scenario]
    if model is None:
        raise typer.BadParameter("MODEL (or --scenario) is required")
    return PlanRequest(model, **options)


def _plan(request: Any) -> Any:
    from inferlab.coordinator.planner import plan_engine
    from inferlab.planning.catalogue import load_catalogue

    try:
        return plan_engine(load_catalogue(), request)
    except (InferLabError, ValueError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {getattr(exc, 'message', exc)}")
        raise typer.Exit(2) from exc


@deploy_app.command("plan")
def deploy_plan(model: str | None = ModelArg, gpu: str = GpuOpt, gpus: int = GpusOpt, engine: str = EngineOpt,
                quant: str | None = QuantOpt, kv_dtype: str = KvOpt, context: int = ContextOpt,
                gpus_per_node: int | None = PerNodeOpt, model_path: str | None = PathOpt,
                scenario: str | None = ScenarioOpt,
                as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The engine spec for MODEL on --gpus: TP/PP, quantisation, KV cache budget, sequences, the exact command, and why."""
    plan = _plan(_request(model, scenario, gpu=gpu, gpus=gpus, engine=engine, quant=quant, kv_dtype=kv_dtype,
                          context=context, gpus_per_node=gpus_per_node, model_path=model_path))
    from inferlab.coordinator.report import plan_document, plan_text

    if as_json:
        typer.echo(orjson.dumps(plan_document(plan), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(plan_text(plan))
    if not plan.fits:
        raise typer.Exit(1)


def _manifests(model: str | None, scenario: str | None, options: dict[str, Any], namespace: str, image: str | None,
               replicas: int) -> list[dict[str, Any]]:
    from inferlab.coordinator.kubernetes.render import RenderOptions, render_group

    plan = _plan(_request(model, scenario, **options))
    spec = replace(plan.spec, replicas=replicas, image=image or plan.spec.image)
    return render_group(spec, RenderOptions(namespace=namespace))


@deploy_app.command("render")
def deploy_render(model: str | None = ModelArg, gpu: str = GpuOpt, gpus: int = GpusOpt, engine: str = EngineOpt,
                  quant: str | None = QuantOpt, kv_dtype: str = KvOpt, context: int = ContextOpt,
                  gpus_per_node: int | None = PerNodeOpt, model_path: str | None = PathOpt,
                  scenario: str | None = ScenarioOpt,
                  namespace: str = typer.Option("inferlab", help="namespace of the objects"),
                  image: str | None = typer.Option(None, help="container image (default: the engine's own)"),
                  replicas: int = typer.Option(1, help="copies of the engine group"),
                  validate: bool = typer.Option(False, help="check against the Kubernetes and LWS schemas"),
                  output: Path | None = typer.Option(None, "--output", "-o", help="write here instead of stdout")) -> None:
    """Kubernetes manifests (Deployment or LeaderWorkerSet, Service, PodDisruptionBudget), offline."""
    options = {"gpu": gpu, "gpus": gpus, "engine": engine, "quant": quant, "kv_dtype": kv_dtype, "context": context,
               "gpus_per_node": gpus_per_node, "model_path": model_path}
    manifests = _manifests(model, scenario, options, namespace, image, replicas)
    if validate:
        from inferlab.coordinator.kubernetes.validate import validate_manifest

        for manifest in manifests:
            try:
                validate_manifest(manifest)
            except ValueError as exc:
                Console(stderr=True).print(f"[red]invalid:[/red] {exc}")
                raise typer.Exit(1) from None
    text = yaml.safe_dump_all(manifests, sort_keys=False)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


@deploy_app.command("apply")
def deploy_apply(model: str | None = ModelArg, gpu: str = GpuOpt, gpus: int = GpusOpt, engine: str = EngineOpt,
                 quant: str | None = QuantOpt, kv_dtype: str = KvOpt, context: int = ContextOpt,
                 gpus_per_node: int | None = PerNodeOpt, model_path: str | None = PathOpt,
                 scenario: str | None = ScenarioOpt,
                 namespace: str = typer.Option("inferlab", help="namespace of the objects"),
                 image: str | None = typer.Option(None, help="container image"),
                 replicas: int = typer.Option(1, help="copies of the engine group")) -> None:
    """Server-side apply the rendered objects to the cluster of the current kubeconfig context."""
    from inferlab.coordinator.kubernetes.apply import apply_manifests

    options = {"gpu": gpu, "gpus": gpus, "engine": engine, "quant": quant, "kv_dtype": kv_dtype, "context": context,
               "gpus_per_node": gpus_per_node, "model_path": model_path}
    for line in apply_manifests(_manifests(model, scenario, options, namespace, image, replicas)):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")
