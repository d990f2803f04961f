"""Registry references as Docker and Ollama spell them, and the auth challenges registries send."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inferlab.modelstore import StoreError
from inferlab.modelstore.cli import register
from inferlab.modelstore.oci import pick_model_layer
from inferlab.modelstore.oci_auth import parse_challenge
from inferlab.modelstore.oci_ref import OciRef, parse_oci_ref

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "expected"), [
    ("smollm2", OciRef("registry.ollama.ai", "library/smollm2", "latest")),
    ("smollm2:135m", OciRef("registry.ollama.ai", "library/smollm2", "135m")),
    ("someone/model:q4_K_M", OciRef("registry.ollama.ai", "someone/model", "q4_K_M")),
    ("ghcr.io/org/team/model:v1", OciRef("ghcr.io", "org/team/model", "v1")),
    ("127.0.0.1:5000/smol", OciRef("127.0.0.1:5000", "smol", "latest", scheme="http")),
    ("localhost/smol:a", OciRef("localhost", "smol", "a", scheme="http")),
    (f"ghcr.io/org/model@{DIGEST}", OciRef("ghcr.io", "org/model", "latest", DIGEST)),
    (f"ghcr.io/org/model:v2@{DIGEST}", OciRef("ghcr.io", "org/model", "v2", DIGEST)),
    ("oci+http://registry.lan:5000/m:t", OciRef("registry.lan:5000", "m", "t", scheme="http")),
    ("oci://localhost:5000/m", OciRef("localhost:5000", "m", "latest", scheme="http")),
    ("hf.co/Org/Model-GGUF:Q4_K_M", OciRef("hf.co", "Org/Model-GGUF", "Q4_K_M")),
])
def test_references(text: str, expected: OciRef) -> None:
    assert parse_oci_ref(text) == expected


def test_reference_parts() -> None:
    ref = parse_oci_ref(f"ghcr.io/org/model:v2@{DIGEST}")
    assert ref.reference == DIGEST and ref.base_url == "https://ghcr.io"
    assert parse_oci_ref("smollm2:135m").local_ref() == "smollm2:135m"  # library/ dropped on Ollama's registry
    assert parse_oci_ref("ghcr.io/org/model:v1").local_ref() == "org/model:v1"
    assert parse_oci_ref("hf.co/Org/Model-GGUF:Q4_K_M").local_ref() == "org/model-gguf:Q4_K_M"


@pytest.mark.parametrize("text", ["a//b", "sm ol", "smol_",  "smol:", "smol:-x", "smol@sha256:12", "smol@md5:" + "0" * 32,
                                  "ghcr.io/", "-smol", "smol/../etc", "r:5000000x/a",
                                  "ghcr.io:99999/a/b", "localhost:0/a"])
def test_bad_references(text: str) -> None:
    with pytest.raises(StoreError):
        parse_oci_ref(text)


def test_challenges() -> None:
    challenge = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                                'scope="repository:org/model:pull"')
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.example/token", "service": "registry.example",
                                "scope": "repository:org/model:pull"}
    assert parse_challenge('Basic realm="Registry Realm"') .params == {"realm": "Registry Realm"}
    assert parse_challenge("Bearer realm=https://a/t, service=x").params == {"realm": "https://a/t", "service": "x"}


def test_the_model_layer_is_picked_by_media_type() -> None:
    layers = [{"mediaType": "application/vnd.ollama.image.template", "digest": DIGEST, "size": 3},
              {"mediaType": "application/vnd.ollama.image.model", "digest": DIGEST, "size": 9}]
    assert pick_model_layer({"layers": layers}, "x")["size"] == 9
    oci = [{"mediaType": "application/vnd.inferlab.model.gguf", "digest": DIGEST, "size": 5}]
    assert pick_model_layer({"layers": oci}, "x")["size"] == 5
    with pytest.raises(StoreError, match=r"no GGUF layer \(media types: application/vnd.oci.image.layer"):
        pick_model_layer({"layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]}, "x")


def test_cli_errors_keep_their_square_brackets(tmp_path: Path) -> None:
    """``fail()`` prints the message as text: rich markup would swallow ``[:tag]``."""
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["models", "show", "Smol:[x]", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "'Smol:[x]' is not a model reference (name[:tag], lower-case name)" in result.output
