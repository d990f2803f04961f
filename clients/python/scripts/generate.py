"""Generate ``inferlab_client/_generated.py`` from InferLab's two OpenAPI documents.

    python clients/python/scripts/generate.py                 # build the documents in-process (needs inferlab)
    python clients/python/scripts/generate.py --url http://127.0.0.1:8000   # from a running gateway
    python clients/python/scripts/generate.py --documents api.json admin.json
    python clients/python/scripts/generate.py --check         # exit 1 when _generated.py is stale

In-process, the documents come from an app built with every feature flag on and the sections that
mount routes of their own switched on (``anomaly.enabled``): every route family registered, so the
output does not depend on anyone's configuration. The output is deterministic: the same documents
give the same bytes (operations and models in document order, nothing timed).

What is generated (everything else in the package is hand-written):
- a ``TypedDict`` per request-body schema the client sends (and the schemas they nest);
- ``OPERATIONS``: every operation of both documents with its method, path, parameters, body and
  whether the client covers it (``scope``: ``admin``, ``customer`` or the reason it has no method);
- ``AdminAPI`` / ``AsyncAdminAPI`` and ``CustomerAPI`` / ``AsyncCustomerAPI``: one typed method per
  admin and customer operation, plus an ``iter_...`` method per paginated list.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import json
import keyword
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE.parent / "src" / "inferlab_client" / "_generated.py"

# The customer API: the operations of /openapi.json a customer's own key calls besides inference.
CUSTOMER_TAGS = ("usage", "billing")
# Operations of /openapi.json the typed client leaves to another client, by tag, with the reason.
NO_CLIENT_TAGS = {
    "inference": "OpenAI-compatible: InferLab(...).openai (the official openai SDK) calls it",
    "models": "OpenAI-compatible: InferLab(...).openai.models",
    "batch": "OpenAI-compatible: InferLab(...).openai.files / .batches",
    "code": "the code assistant's API, called by editor plugins, not by this client",
    "planning": "the planning calculators: use the CLI (inferlab vram/cost/...) or call them with request()",
    "registry": "A/B feedback from an application's end users: request('POST', '/v1/feedback', ...)",
    "browser": "the browser hybrid's API, called by clients/browser",
    "operations": "health, readiness and Prometheus metrics: probes and scrapers, not a client",
    "documentation": "the OpenAPI documents themselves (the generator reads them)",
}
# Names read better than the derived ones (by operationId). Keep: renaming breaks callers.
NAMES = {
    "post_admin_billing_drafts": "create_billing_drafts",
    "post_admin_billing_invoices_invoice_id_paid": "mark_billing_invoice_paid",
    "post_admin_billing_invoices_invoice_id_uncollectible": "mark_billing_invoice_uncollectible",
    "post_admin_billing_invoices_invoice_id_refunds": "refund_billing_invoice",
    "post_admin_billing_accounts_tenant_id_payment-method": "set_billing_account_payment_method",
    "post_admin_registry_experiments_experiment_id_decision": "decide_registry_experiment",
}
PUBLIC_REASON = "public machine endpoint (no credential): webhooks and probes are not client operations"


# ---------------------------------------------------------------------------------------------
# Reading the documents


def documents_in_process() -> tuple[dict[str, Any], dict[str, Any]]:
    """Both documents of an app with every route family registered (every feature flag on)."""
    from aiohttp.test_utils import TestClient, TestServer

    from inferlab.app import create_app
    from inferlab.config import Settings
    from inferlab.config.features import FeatureFlags

    async def fetch() -> tuple[dict[str, Any], dict[str, Any]]:
        flags = {name: True for name, field in FeatureFlags.model_fields.items() if field.annotation is bool}
        settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="inferlab-generate-")), features=flags,
                            auth={"pepper": "generate-" + "0" * 32, "bootstrap": False},
                            billing={"enabled": True, "jobs": False},
                            # section switches that mount routes besides the feature flags (the
                            # anomaly detector reads the store, on with features.metering)
                            anomaly={"enabled": True, "backfill_s": 0},
                            models=[{"name": "m", "backend": "openai", "url": "http://127.0.0.1:9/v1"}])
        app = await create_app(settings)
        async with TestClient(TestServer(app)) as client:
            api = await (await client.get("/openapi.json")).json()
            admin = await (await client.get("/admin/openapi.json")).json()
        return api, admin

    try:
        return asyncio.run(fetch())
    except (ValueError, OSError, RuntimeError) as exc:  # a feature flag that needs more configuration
        raise SystemExit(f"could not build an app with every feature flag on ({exc}); give the settings it needs "
                         "in documents_in_process(), or pass --url of a gateway with every route family on") from exc


def documents_from_url(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import httpx2

    with httpx2.Client(base_url=url, timeout=30) as client:
        return client.get("/openapi.json").json(), client.get("/admin/openapi.json").json()


# ---------------------------------------------------------------------------------------------
# Operations


def scope_of(document: str, path: str, operation: dict[str, Any]) -> str:
    """``admin``, ``customer``, or why the typed client has no method for it (``no client: ...``)."""
    tags = operation.get("tags") or []
    if operation.get("security") == []:
        return "no client: " + (NO_CLIENT_TAGS["documentation"] if "documentation" in tags else PUBLIC_REASON)
    if document == "admin":
        return "admin"
    if any(tag in CUSTOMER_TAGS for tag in tags):
        return "customer"
    for tag in tags:
        if tag in NO_CLIENT_TAGS:
            return "no client: " + NO_CLIENT_TAGS[tag]
    return "no client: not part of the typed client's scope (tag " + ", ".join(tags) + "): use request()"


def singular(word: str) -> str:
    if word.endswith("ses"):
        return word[:-2]
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def method_name(method: str, path: str, operation: dict[str, Any]) -> str:
    """A readable, stable name: ``list_users``, ``get_user``, ``create_key``, ``revoke_key``..."""
    segments = [s for s in path.split("/") if s][1:]  # without "admin" / "v1"
    words: list[str] = []
    for index, segment in enumerate(segments):
        if segment.startswith("{"):
            continue
        follows_param = index + 1 < len(segments) and segments[index + 1].startswith("{")
        words.append((singular(segment) if follows_param else segment).replace("-", "_").replace(".", "_"))
    last_is_param = bool(segments) and segments[-1].startswith("{")
    after_param = len(segments) > 1 and segments[-2].startswith("{") and not last_is_param
    params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    created = "201" in operation.get("responses", {})
    match method:
        case "get":
            verb = "list" if "limit" in params and not last_is_param else "get"
        case "put":
            verb = "set"
        case "patch":
            verb = "update"
        case "delete":
            verb = "delete"
        case _ if not words:
            verb = method
        case _ if after_param and not (created and singular(words[-1]) != words[-1]):
            verb = words.pop()  # an action on one object: revoke_key, suspend_tenant, rotate_key
        case _ if created:
            verb = "create"
            words[-1] = singular(words[-1])
        case _ if not last_is_param:
            verb = words.pop()  # an action on a collection: close_billing, collect_billing
        case _:
            verb = "post"
    return "_".join([verb, *words]) if words else verb


# ---------------------------------------------------------------------------------------------
# Types


def python_name(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    return name + "_" if keyword.iskeyword(name) or hasattr(builtins, name) else name


class Types:
    """JSON Schema → Python type expressions; collects the TypedDicts to emit."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas
        self.emitted: dict[str, str] = {}  # name → source, in the order first needed

    def ref(self, name: str) -> str:
        if name not in self.emitted:
            self.emitted[name] = ""  # reserve (recursion)
            self.emitted[name] = self.typed_dict(name, self.schemas[name])
        return name

    def expr(self, schema: dict[str, Any]) -> str:
        if "$ref" in schema:
            return self.ref(schema["$ref"].rsplit("/", 1)[-1])
        if "anyOf" in schema or "oneOf" in schema:
            options = [self.expr(option) for option in schema.get("anyOf", schema.get("oneOf", []))]
            return " | ".join(dict.fromkeys(options)) or "Any"
        if "const" in schema:
            return f"Literal[{schema['const']!r}]"
        if "enum" in schema:
            values = schema["enum"]
            if all(isinstance(value, str | int | bool) or value is None for value in values):
                return "Literal[" + ", ".join(repr(value) for value in values) + "]"
            return "Any"
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(self.expr({**schema, "type": one}) for one in kind)
        match kind:
            case "string":
                return "str"
            case "integer":
                return "int"
            case "number":
                return "float"
            case "boolean":
                return "bool"
            case "null":
                return "None"
            case "array":
                return f"list[{self.expr(schema.get('items', {}))}]"
            case "object":
                extra = schema.get("additionalProperties")
                if isinstance(extra, dict) and extra and not schema.get("properties"):
                    return f"dict[str, {self.expr(extra)}]"
                return "dict[str, Any]"
        return "Any"

    def typed_dict(self, name: str, schema: dict[str, Any]) -> str:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        doc = (schema.get("description") or f"The ``{name}`` schema.").strip().replace('"""', "'''")
        fields = []
        for field, spec in properties.items():
            kind = self.expr(spec)
            fields.append((field, f"Required[{kind}]" if field in required else kind))
        if all(field.isidentifier() and not keyword.iskeyword(field) for field, _ in fields):
            lines = [f"class {name}(TypedDict, total=False):", f'    """{doc}"""', ""]
            lines += [f"    {field}: {kind}" for field, kind in fields]
            return "\n".join(lines[:2] + lines[3:] if not fields else lines) + "\n"
        items = ", ".join(f"{field!r}: {kind}" for field, kind in fields)
        return f"{name} = TypedDict({name!r}, {{{items}}}, total=False)\n"


# ---------------------------------------------------------------------------------------------
# Output


def parameter_list(operation: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] == where]


def return_kind(path: str, operation: dict[str, Any]) -> str:
    success = next(code for code in operation["responses"] if code.startswith("2"))
    if success == "204":
        return "none"
    if path.endswith("/pdf"):
        return "bytes"
    if path.endswith("/html"):
        return "text"
    if any(p["name"] == "format" for p in parameter_list(operation, "query")):
        return "json_or_text"
    return "json"


RETURNS = {"none": "None", "bytes": "bytes", "text": "str", "json_or_text": "JSONObject | str", "json": "JSONObject"}


def _role(operation: dict[str, Any]) -> str:
    role = operation.get("x-required-role")
    return f", at least ``{role}``" if role else ""


def method_source(op: dict[str, Any], types: Types, *, asynchronous: bool) -> list[str]:
    operation, path = op["operation"], op["path"]
    args = ["self"]
    path_args = []
    for param in parameter_list(operation, "path"):
        arg = python_name(param["name"])
        args.append(f"{arg}: {types.expr(param.get('schema', {}))}")
        path_args.append((param["name"], arg))
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body is not None:
        args.append(f"body: {types.expr(body)}")
    query = parameter_list(operation, "query")
    if query or op["method"] == "post":
        args.append("*")
    query_args = []
    for param in query:
        arg = python_name(param["name"])
        args.append(f"{arg}: {types.expr(param.get('schema', {}))} | None = None")
        query_args.append((param["name"], arg))
    if op["method"] == "post":
        args.append("idempotency_key: str | None = None")
    kind = return_kind(path, operation)
    prefix = "async " if asynchronous else ""
    summary = (operation.get("summary") or op["name"]).strip().rstrip(".").replace('"""', "'''")
    lines = [f"    {prefix}def {op['name']}({', '.join(args)}) -> {RETURNS[kind]}:",
             f'        """{summary}. ``{op["method"].upper()} {path}``{_role(operation)}"""']
    path_expr = "f" + repr(re.sub(r"\{([^}]+)\}", lambda m: "{_q(" + python_name(m.group(1)) + ")}", path)) \
        if path_args else repr(path)
    call = [f"{op['id']!r}", repr(op["method"].upper()), path_expr]
    if query_args:
        call.append("query={" + ", ".join(f"{name!r}: {arg}" for name, arg in query_args) + "}")
    if body is not None:
        call.append("body=body")
    if op["method"] == "post":
        call.append("idempotency_key=idempotency_key")
    call.append(f"expect={kind!r}")
    awaited = "await " if asynchronous else ""
    lines.append(f"        return {awaited}self._transport.call({', '.join(call)})  # type: ignore[no-any-return]"
                 if kind != "none" else f"        {awaited}self._transport.call({', '.join(call)})")
    return lines


def pager_source(op: dict[str, Any], types: Types, *, asynchronous: bool) -> list[str]:
    operation = op["operation"]
    query = [p for p in parameter_list(operation, "query") if p["name"] != "after"]
    args = ["self", "*"] + [f"{python_name(p['name'])}: {types.expr(p.get('schema', {}))} | None = None"
                            for p in query]
    name = "iter_" + op["name"].removeprefix("list_")
    kwargs = ", ".join(f"{python_name(p['name'])}={python_name(p['name'])}" for p in query)
    if asynchronous:
        return [f"    def {name}({', '.join(args)}) -> AsyncIterator[JSONObject]:",
                f'        """Every item of ``{op["name"]}``, page after page."""',
                f"        return apaginate(lambda after: self.{op['name']}({kwargs}{', ' if kwargs else ''}after=after))"]
    return [f"    def {name}({', '.join(args)}) -> Iterator[JSONObject]:",
            f'        """Every item of ``{op["name"]}``, page after page."""',
            f"        return paginate(lambda after: self.{op['name']}({kwargs}{', ' if kwargs else ''}after=after))"]


HEADER = '''"""Generated by clients/python/scripts/generate.py from InferLab's OpenAPI documents. Do not edit.

Regenerate after changing a route: ``python clients/python/scripts/generate.py`` (``--check`` tells
whether this file is stale; the test suite runs it).
"""

# ruff: noqa: E501

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, NamedTuple, Required, TypedDict

from inferlab_client._pagination import apaginate, paginate
from inferlab_client._transport import AsyncTransport, JSONObject, SyncTransport
from inferlab_client._transport import quote_path as _q

'''


def _export_order(name: str) -> tuple[int, str]:
    """ruff's order for ``__all__`` (RUF022): CONSTANTS, Classes, then the rest."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def generate(api: dict[str, Any], admin: dict[str, Any]) -> str:
    schemas = {**api["components"]["schemas"], **admin["components"]["schemas"]}
    types = Types(schemas)
    ops: list[dict[str, Any]] = []
    for document_name, document in (("api", api), ("admin", admin)):
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                scope = scope_of(document_name, path, operation)
                ops.append({"id": operation["operationId"], "method": method, "path": path, "document": document_name,
                            "scope": scope, "operation": operation, "name": NAMES.get(operation["operationId"])
                            or method_name(method, path, operation)})
    for scope in ("admin", "customer"):
        names = [op["name"] for op in ops if op["scope"] == scope]
        for op in ops:
            if op["scope"] == scope and names.count(op["name"]) > 1:
                op["name"] = op["id"]  # a clash: fall back to the unique operationId
    classes: list[str] = []
    for scope, title in (("admin", "Admin"), ("customer", "Customer")):
        for asynchronous in (False, True):
            cls = f"{'Async' if asynchronous else ''}{title}API"
            transport = "AsyncTransport" if asynchronous else "SyncTransport"
            what = "the admin API (/admin/...)" if scope == "admin" else "the customer API (usage, invoices)"
            lines = [f"class {cls}:", f'    """{"Asynchronous" if asynchronous else "Synchronous"}: {what}."""', "",
                     f"    def __init__(self, transport: {transport}) -> None:", "        self._transport = transport"]
            for op in ops:
                if op["scope"] != scope:
                    continue
                lines += ["", *method_source(op, types, asynchronous=asynchronous)]
                query = {p["name"] for p in parameter_list(op["operation"], "query")}
                if op["method"] == "get" and {"limit", "after"} <= query:
                    lines += ["", *pager_source(op, types, asynchronous=asynchronous)]
            classes.append("\n".join(lines) + "\n")
    table = ["class Operation(NamedTuple):", '    """One operation of the OpenAPI documents."""', "",
             "    operation_id: str", "    method: str", "    path: str", "    document: str",
             "    scope: str  # admin, customer, or \"no client: <why>\"", "    method_name: str", "",
             "", "OPERATIONS: tuple[Operation, ...] = ("]
    for op in ops:
        table.append(f"    Operation({op['id']!r}, {op['method'].upper()!r}, {op['path']!r}, {op['document']!r}, "
                     f"{op['scope']!r}, {op['name'] if op['scope'] in ('admin', 'customer') else ''!r}),")
    table.append(")")
    models = list(types.emitted.values())
    names = ["OPERATIONS", "AdminAPI", "AsyncAdminAPI", "AsyncCustomerAPI", "CustomerAPI", "Operation",
             *types.emitted]
    exports = "__all__ = [\n" + "".join(f"    {name!r},\n" for name in sorted(names, key=_export_order)) + "]\n"
    return (HEADER + exports + "\n\n" + "\n\n".join(models) + "\n\n"
            + "\n".join(table) + "\n\n\n" + "\n\n".join(classes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="a running gateway (server.docs on) to read the documents from")
    source.add_argument("--documents", nargs=2, metavar=("API_JSON", "ADMIN_JSON"), type=Path)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 when the output would change")
    args = parser.parse_args(argv)
    if args.url:
        api, admin = documents_from_url(args.url)
    elif args.documents:
        api, admin = (json.loads(path.read_text()) for path in args.documents)
    else:
        api, admin = documents_in_process()
    text = generate(api, admin)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python clients/python/scripts/generate.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
