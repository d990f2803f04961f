"""Which routes honour Idempotency-Key (from a real app's declared routes), the key's format, the
caller's scope, the fingerprint, the sealed bodies, and the store the builder picks."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from inferlab.api.idempotency import idempotent_routes, storable
from inferlab.api.routes import DECLARED
from inferlab.app import create_app
from inferlab.auth import ALL_SCOPES, Principal
from inferlab.config import Settings
from inferlab.config.idempotency import IdempotencySettings
from inferlab.idempotency.memory import MemoryIdempotencyStore
from inferlab.idempotency.service import (
    build_idempotency,
    fingerprint,
    scope_of,
    seal,
    stored_key,
    unseal,
    valid_key,
)
from inferlab.store import Database
from inferlab.store.idempotency import SqlIdempotencyStore
from inferlab.testing import EngineSimulator


async def test_admin_and_customer_writes_are_in_inference_and_forms_are_out(sim: EngineSimulator,
                                                                           tmp_path: Path) -> None:
    assert sim.base_url is not None
    app = await create_app(Settings(
        data_dir=tmp_path, features={"auth": True, "planning_api": True, "registry": True, "browser": True},
        auth={"pepper": "pepper-idempotency-0123456789", "bootstrap": False},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}]))
    async with TestClient(TestServer(app)):  # started and stopped: its sessions closed
        declared = app[DECLARED]
    routes = idempotent_routes(declared)
    for write in [("POST", "/admin/keys"), ("POST", "/admin/users"), ("PATCH", "/admin/users/{user_id}"),
                  ("DELETE", "/admin/keys/{key_id}"), ("PUT", "/admin/tiers/{tier}"), ("POST", "/v1/batches"),
                  ("POST", "/v1/batches/{batch_id}/cancel"), ("DELETE", "/v1/files/{file_id}"),
                  ("DELETE", "/v1/responses/{response_id}")]:
        assert write in routes, write
    for out in [("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/embeddings"),
                ("POST", "/v1/responses"), ("POST", "/tokenize"), ("POST", "/v1/code/completions"),
                ("POST", "/v1/files"), ("POST", "/ui/keys"), ("POST", "/ui/login"), ("GET", "/admin/keys")]:
        assert out not in routes, out
    assert not any(path.startswith("/v1/planning") for _, path in routes)


def test_key_format() -> None:
    assert valid_key("0f8fad5b-d9cb-469f-a165-70867728950e") and valid_key("x" * 255) and valid_key("é ok")
    for bad in ("", "x" * 256, "a\tb", "a\nb", "a\x00b", "a\x7fb"):
        assert not valid_key(bad), bad


def test_scopes_never_cross_tenants() -> None:
    alice = Principal("acme", "u1", "member", ALL_SCOPES, key_id="k1")
    alice_other_key = Principal("acme", "u1", "member", ALL_SCOPES, key_id="k2")
    same_user_id_elsewhere = Principal("globex", "u1", "member", ALL_SCOPES, key_id="k3")
    assert scope_of(alice) == scope_of(alice_other_key)  # one user, all their keys
    assert scope_of(alice) != scope_of(same_user_id_elsewhere)
    assert scope_of(None) == "anonymous"
    assert stored_key(scope_of(alice), "k") != stored_key(scope_of(same_user_id_elsewhere), "k")


def test_the_fingerprint_is_method_path_and_body() -> None:
    base = fingerprint("POST", "/admin/keys", b'{"name": "a"}')
    assert base == fingerprint("POST", "/admin/keys", b'{"name": "a"}')
    assert len({base, fingerprint("PUT", "/admin/keys", b'{"name": "a"}'),
                fingerprint("POST", "/admin/users", b'{"name": "a"}'),
                fingerprint("POST", "/admin/keys?x=1", b'{"name": "a"}'),
                fingerprint("POST", "/admin/keys", b'{"name": "b"}')}) == 5


def test_stored_bodies_are_sealed_under_the_callers_key() -> None:
    secret = b'{"key": "il-abc-secret"}'
    sealed = seal("acme/user:u1", "key-1", secret)
    assert b"secret" not in sealed and unseal("acme/user:u1", "key-1", sealed) == secret
    assert seal("acme/user:u1", "key-1", secret) != sealed  # a fresh nonce each time


async def test_the_builder_picks_the_sql_store_with_a_database_else_memory(tmp_path: Path) -> None:
    log = logging.getLogger("test")
    assert isinstance(build_idempotency(IdempotencySettings(), None, log).store, MemoryIdempotencyStore)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    try:
        assert isinstance(build_idempotency(IdempotencySettings(), database, log).store, SqlIdempotencyStore)
    finally:
        await database.close()


def test_what_is_kept_and_what_releases_the_key() -> None:
    created = web.json_response({"id": "u1"}, status=201, headers={"Location": "/admin/users/u1", "X-Other": "no"})
    kept = storable(created, 1024)
    assert kept is not None and kept.status == 201 and kept.body == b'{"id": "u1"}'
    assert kept.headers == {"Content-Type": "application/json; charset=utf-8", "Location": "/admin/users/u1"}
    assert storable(web.json_response({"error": {}}, status=400), 1024) is not None  # refusals are replayed
    for status in (500, 502, 503, 504, 408, 429):  # the key is released: a retry runs afresh
        assert storable(web.json_response({"error": {}}, status=status), 1024) is None, status
    assert storable(web.Response(body=b"x" * 2048), 1024) is None  # larger than max_response_bytes
    assert storable(web.StreamResponse(), 1024) is None  # streamed: nothing to keep
