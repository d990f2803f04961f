"""Stored responses and batches, on SQLite and PostgreSQL: tenant-scoped reads, expiry, a batch
held by one runner at a time (until its lease runs out), a line never answered twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inferlab.batches.model import BatchRecord, FileRecord, LineResult
from inferlab.responses.store import StoredResponse
from inferlab.store import Database
from inferlab.store.batches import SqlBatchStore
from inferlab.store.responses import SqlResponseStore

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def batch(batch_id: str, created: datetime = NOW) -> BatchRecord:
    return BatchRecord(id=batch_id, tenant_id="a", endpoint="/v1/chat/completions", input_file_id="file-1",
                       completion_window="24h", status="validating", created_at=created,
                       expires_at=created + timedelta(hours=24), total=3, caller={"tenant_id": "a"})


async def test_responses_are_the_tenants_own_until_they_expire(database: Database) -> None:
    store = SqlResponseStore(database)
    await store.save(StoredResponse("resp_1", "a", NOW, NOW + timedelta(hours=1), {"id": "resp_1"},
                                    [{"id": "msg_1", "type": "message"}], [{"role": "user", "content": "hi"}]))
    found = await store.get("a", "resp_1", NOW)
    assert found is not None and found.history == [{"role": "user", "content": "hi"}]
    assert await store.get("b", "resp_1", NOW) is None
    assert await store.get("a", "resp_1", NOW + timedelta(hours=2)) is None
    assert not await store.delete("b", "resp_1")
    assert await store.purge(NOW + timedelta(hours=2)) == 1
    assert await store.get("a", "resp_1", NOW) is None


async def test_files_and_batches_are_the_tenants_own(database: Database) -> None:
    store = SqlBatchStore(database)
    await store.put_file(FileRecord("file-1", "a", "in.jsonl", "batch", 10, NOW))
    assert (await store.get_file("a", "file-1")) is not None and await store.get_file("b", "file-1") is None
    assert not await store.delete_file("b", "file-1")
    await store.add_batch(batch("batch_1"))
    await store.add_batch(batch("batch_2", NOW + timedelta(seconds=1)))
    assert await store.get_batch("b", "batch_1") is None
    assert [b.id for b in await store.list_batches("a", 10)] == ["batch_2", "batch_1"]
    assert [b.id for b in await store.list_batches("a", 10, after="batch_2")] == ["batch_1"]
    assert await store.list_batches("b", 10) == []


async def test_one_runner_holds_a_batch_until_its_lease_runs_out(database: Database) -> None:
    store = SqlBatchStore(database)
    await store.add_batch(batch("batch_1"))
    held = await store.claim("one", NOW, NOW + timedelta(seconds=30))
    assert held is not None and held.id == "batch_1"
    assert await store.claim("two", NOW + timedelta(seconds=10), NOW + timedelta(seconds=40)) is None
    assert await store.renew("batch_1", "one", NOW + timedelta(seconds=60)) == "validating"
    taken = await store.claim("two", NOW + timedelta(seconds=61), NOW + timedelta(seconds=90))
    assert taken is not None and await store.renew("batch_1", "one", NOW + timedelta(seconds=99)) is None
    assert await store.update_batch("batch_1", ("in_progress",), {"status": "failed"}) is False
    assert await store.update_batch("batch_1", ("validating",), {"status": "completed", "owner": None})
    assert await store.claim("three", NOW + timedelta(days=1), NOW + timedelta(days=2)) is None  # done


async def test_a_line_is_answered_once_and_counted_once(database: Database) -> None:
    store = SqlBatchStore(database)
    await store.add_batch(batch("batch_1"))
    ok = LineResult(0, "x", True, {"custom_id": "x"})
    assert await store.record("batch_1", ok, NOW)
    assert not await store.record("batch_1", LineResult(0, "x", False, {"custom_id": "x"}), NOW)
    assert await store.record("batch_1", LineResult(2, "z", False, {"custom_id": "z"}), NOW)
    assert await store.answered("batch_1") == {0, 2}
    found = await store.get_batch("a", "batch_1")
    assert found is not None and (found.completed, found.failed) == (1, 1)
    assert [(r.line, r.ok) for r in await store.results("batch_1")] == [(0, True), (2, False)]
