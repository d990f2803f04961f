"""``inferlab models list|show|pull|rm|prune|verify|quantize``: the local model store, in
``registry.store_dir`` (default: ``<data_dir>/models``). Output is JSON, one object per line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console

from inferlab.auth.cli import ConfigOpt, DataDirOpt, ProfileOpt, fail

models_app = typer.Typer(help="The local model store: pull, list, verify, quantize, remove.", no_args_is_help=True)


def _emit(row: dict[str, Any]) -> None:
    print(orjson.dumps(row).decode())


def store_of(config: Path | None, profile: str | None, data_dir: Path | None) -> tuple[Any, Any]:
    from inferlab.config import ConfigError, load_settings
    from inferlab.modelstore import ModelStore

    try:
        settings = load_settings(config, profile=profile, overrides={"data_dir": data_dir} if data_dir else None)
    except ConfigError as exc:
        fail(str(exc), 2)
    root = Path(settings.registry.store_dir) if settings.registry.store_dir else settings.data_dir / "models"
    return ModelStore(root), settings


def _manifest(store: Any, manifest: Any) -> dict[str, Any]:
    model = manifest.model
    return {**manifest.to_json(), "path": str(store.blob_path(model.digest)), "size": model.size}


def _guard(work: Any) -> Any:
    from inferlab.modelstore import StoreError

    try:
        return work()
    except StoreError as exc:
        fail(str(exc))


@models_app.command("list")
def models_list(config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                data_dir: Path | None = DataDirOpt) -> None:
    """Every stored model."""
    store, _ = store_of(config, profile, data_dir)
    for manifest in store.manifests():
        _emit({"model": manifest.ref, "digest": manifest.model.digest, "size": manifest.model.size,
               "created": manifest.created})


@models_app.command("show")
def models_show(ref: str, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                data_dir: Path | None = DataDirOpt) -> None:
    """A model's manifest and the path of its GGUF file."""
    store, _ = store_of(config, profile, data_dir)
    _emit(_guard(lambda: _manifest(store, store.show(ref))))


@models_app.command("verify")
def models_verify(ref: str, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                  data_dir: Path | None = DataDirOpt) -> None:
    """Re-hash a model's blobs (a corrupted one fails)."""
    store, _ = store_of(config, profile, data_dir)
    _emit(_guard(lambda: _manifest(store, store.verify(ref))))


@models_app.command("pull")
def models_pull(source: str = typer.Argument(..., help="an http(s) URL of a GGUF file, or a registry reference "
                                                         "([registry/][namespace/]name[:tag][@sha256:...])"),
                ref: str | None = typer.Argument(None, help="name[:tag] to store it as (default for a registry "
                                                            "reference: its name:tag)"),
                digest: str | None = typer.Option(None, help="sha256:<hex> the file must have (URL pulls)"),
                username: str | None = typer.Option(None, help="registry user (token or Basic auth)"),
                password: str | None = typer.Option(None, envvar="INFERLAB_PULL_PASSWORD", show_default=False,
                                                    help="registry password or token (better: the environment "
                                                         "variable INFERLAB_PULL_PASSWORD)"),
                config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                data_dir: Path | None = DataDirOpt) -> None:
    """Download a GGUF from a URL or an OCI/Ollama registry; run it again after an interruption to resume."""
    from inferlab.modelstore.oci import pull_oci
    from inferlab.modelstore.oci_auth import Credentials
    from inferlab.modelstore.pull import pull

    store, _ = store_of(config, profile, data_dir)
    console = Console(stderr=True)

    def progress(done: int, total: int | None) -> None:
        if total and done == total:
            console.print(f"{done} bytes", highlight=False)

    if source.startswith(("http://", "https://")):
        if ref is None:
            fail("a URL pull needs the name[:tag] to store it as")
        _emit(_guard(lambda: _manifest(store, asyncio.run(pull(store, source, ref, digest=digest,
                                                                progress=progress)))))
        return
    credentials = Credentials(username, password or "") if username else None
    _emit(_guard(lambda: _manifest(store, asyncio.run(pull_oci(store, source, ref, credentials=credentials,
                                                                progress=progress)))))


@models_app.command("rm")
def models_rm(ref: str, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
              data_dir: Path | None = DataDirOpt) -> None:
    """Forget a model (its blobs go with the next prune, unless another model names them)."""
    store, _ = store_of(config, profile, data_dir)
    _emit({"model": _guard(lambda: store.remove(ref)).ref, "deleted": True})


@models_app.command("prune")
def models_prune(config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                 data_dir: Path | None = DataDirOpt) -> None:
    """Remove blobs no model names, and partial downloads older than a day."""
    store, _ = store_of(config, profile, data_dir)
    _emit({"removed": store.prune()})


@models_app.command("quantize")
def models_quantize(source: str, quant: str = typer.Argument(..., help="Q4_K_M, Q8_0, ..."),
                    target: str = typer.Argument(..., help="name[:tag] of the result"),
                    config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                    data_dir: Path | None = DataDirOpt) -> None:
    """Requantise a stored model with llama-quantize (`inferlab engines build --tool llama-quantize`)."""
    from inferlab.modelstore.quantize import find_quantizer, quantize

    store, settings = store_of(config, profile, data_dir)

    def run() -> Any:
        tool = find_quantizer(settings.engines.cache_dir)
        return _manifest(store, asyncio.run(quantize(store, source, quant, target, quantizer=tool)))

    _emit(_guard(run))


@models_app.command("add")
def models_add(path: str, ref: str, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
               data_dir: Path | None = DataDirOpt) -> None:
    """Store a local GGUF file (hashed on the way in); `embedded:smollm2` names the embedded model."""
    from inferlab.coordinator.locate import EngineUnavailable, resolve_model_path
    from inferlab.modelstore.store import Manifest, parse_ref

    store, _ = store_of(config, profile, data_dir)

    def run() -> Any:
        try:
            source = resolve_model_path(path)
        except EngineUnavailable as exc:
            fail(str(exc))
        name, tag = parse_ref(ref)
        layer = store.ingest_file(source)
        return _manifest(store, store.write_manifest(Manifest(name, tag, [layer], source=path)))

    _emit(_guard(run))


@models_app.command("convert")
def models_convert(source: Path = typer.Argument(..., help="a Hugging Face checkpoint directory (config.json, "
                                                            "*.safetensors, tokenizer files)"),
                   target: str = typer.Argument(..., help="name[:tag] of the result"),
                   outtype: str = typer.Option("f16", help="f16, bf16, f32, q8_0 (quantize further with "
                                                           "`inferlab models quantize`)"),
                   python: str | None = typer.Option(None, help="a Python with torch (default: "
                                                                "registry.convert_python)"),
                   config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                   data_dir: Path | None = DataDirOpt) -> None:
    """Convert safetensors to GGUF with llama.cpp's convert_hf_to_gguf.py (the `convert` extra: torch)."""
    from inferlab.modelstore.convert import convert, ensure_converter, find_convert_python

    store, settings = store_of(config, profile, data_dir)

    def run() -> Any:
        interpreter = find_convert_python(python or settings.registry.convert_python)
        converter = ensure_converter(settings.engines.cache_dir)
        return _manifest(store, asyncio.run(convert(store, source.expanduser(), target, python=interpreter,
                                                    converter=converter, outtype=outtype)))

    _emit(_guard(run))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
