"""``/docs``: the OpenAPI documents rendered as one self-contained HTML page.

No script, no external stylesheet or font (the gateway may have no internet, and a page that
loads nothing cannot leak anything): every operation, grouped by tag, with its method and path,
summary, required role, parameters, body fields and responses, each with an anchor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import orjson

_CODE = re.compile(r"`([^`]+)`")
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 1.5rem;color:#1b1b1b}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ccc;margin-top:2.5rem}h3{margin-top:2rem;color:#444}
article{border:1px solid #ddd;border-radius:6px;padding:.3rem 1rem .8rem;margin:1rem 0}
h4{margin:.6rem 0;font-size:1.05rem}h4 a{color:inherit;text-decoration:none}
.m{display:inline-block;min-width:4.2rem;font:bold .8rem monospace;padding:.15rem .4rem;border-radius:4px;
background:#e8eef7;text-align:center}.d{white-space:pre-line;color:#333}.who{font-size:.8rem;font-weight:normal;color:#555;float:right}
table{border-collapse:collapse;margin:.4rem 0;font-size:.9rem}td,th{border:1px solid #ddd;padding:.2rem .5rem;
text-align:left;vertical-align:top}code{font-size:.9em}nav ul{columns:2}
"""


def render_page(documents: Sequence[tuple[str, str, Mapping[str, Any]]]) -> str:
    """``documents``: (anchor prefix, URL of the JSON, OpenAPI document)."""
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             "<meta name=viewport content='width=device-width,initial-scale=1'>",
             f"<title>InferLab API</title><style>{STYLE}</style></head><body><h1>InferLab API</h1><nav><ul>"]
    for key, _, document in documents:
        parts.append(f"<li><a href='#{key}'>{_text(document['info']['title'])}</a><ul>")
        parts += [f"<li><a href='#{key}-{_slug(tag)}'>{_text(tag)}</a></li>" for tag in _tags(document)]
        parts.append("</ul></li>")
    parts.append("</ul></nav>")
    for key, url, document in documents:
        parts += _document(key, url, document)
    parts.append("</body></html>")
    return "".join(parts)


def _document(key: str, url: str, document: Mapping[str, Any]) -> list[str]:
    info = document["info"]
    parts = [f"<h2 id='{key}'>{_text(info['title'])}</h2>",
             f"<p class=d>{_text(info.get('description', ''))}</p>",
             f"<p>OpenAPI {_text(document['openapi'])}: <a href='{_text(url)}'><code>{_text(url)}</code></a></p>"]
    schemas = document.get("components", {}).get("schemas", {})
    for tag in _tags(document):
        parts.append(f"<h3 id='{key}-{_slug(tag)}'>{_text(tag)}</h3>")
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if (operation.get("tags") or ["other"])[0] == tag:
                    parts += _operation(method, path, operation, schemas)
    return parts


def _tags(document: Mapping[str, Any]) -> list[str]:
    tags = [tag["name"] for tag in document.get("tags", [])]
    untagged = any(not op.get("tags") for ops in document["paths"].values() for op in ops.values())
    return [*tags, "other"] if untagged else tags


def _operation(method: str, path: str, operation: Mapping[str, Any], schemas: Mapping[str, Any]) -> list[str]:
    anchor = _slug(operation["operationId"])
    role = operation.get("x-required-role")
    who = f"{_text(operation['x-route-group'])}: {_text(role)}" if role else "public"
    parts = [f"<article id='{anchor}'><h4><a href='#{anchor}'><span class=m>{method.upper()}</span> ",
             f"<code>{_text(path)}</code></a> <span class=who>{who}</span></h4>",
             f"<p>{_text(operation.get('summary', ''))}</p><p class=d>{_prose(operation.get('description', ''))}</p>"]
    parameters = operation.get("parameters", [])
    if parameters:
        rows: list[tuple[Any, ...]] = [(p["name"], p["in"], _type(p.get("schema", {}), schemas),
                                        p.get("required", False), p.get("description", "")) for p in parameters]
        parts.append(_table("Parameters", ("name", "in", "type", "required", "description"), rows))
    body = operation.get("requestBody")
    if body is not None:
        schema = _resolve(body["content"]["application/json"]["schema"], schemas)
        required = set(schema.get("required", []))
        rows = [(name, _type(field, schemas), name in required, field.get("description", ""))
                for name, field in schema.get("properties", {}).items()]
        parts.append(_table("Body (JSON)", ("field", "type", "required", "description"), rows))
        if schema.get("description"):
            parts.append(f"<p class=d>{_prose(schema['description'])}</p>")
    rows = [(status, response.get("description", ""), ", ".join(response.get("content", {})))
            for status, response in operation.get("responses", {}).items()]
    parts.append(_table("Responses", ("status", "description", "content"), rows))
    parts.append("</article>")
    return parts


def _table(caption: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><caption>{_text(caption)}</caption><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    return _text(value)


def _resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    return schemas.get(ref.rsplit("/", 1)[-1], {}) if isinstance(ref, str) else schema


def _type(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    """A short reading of a JSON schema: ``integer ≥ 1``, ``string | null``, ``array of string``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type(option, schemas) for option in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"])
    if "const" in schema:
        return f'"{schema["const"]}"'
    kind = schema.get("type", "any")
    text = " | ".join(kind) if isinstance(kind, list) else str(kind)
    if kind == "array" and "items" in schema:
        text = "array of " + _type(schema["items"], schemas)
    low, high = schema.get("minimum"), schema.get("maximum")
    bounds = [f"{low} to {high}" if low is not None and high is not None else
              f"≥ {low}" if low is not None else f"≤ {high}" if high is not None else "",
              f"(default {orjson.dumps(schema['default']).decode()})" if "default" in schema else ""]
    return " ".join([text, *filter(None, bounds)])


def _prose(text: str) -> str:
    """Escaped text with `code` spans: the markdown the descriptions use."""
    return _CODE.sub(r"<code>\1</code>", _text(text))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


def _text(value: Any) -> str:
    return escape(str(value), quote=True)
