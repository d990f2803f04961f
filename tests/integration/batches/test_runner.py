"""The batch runner over a stand-in chain and a real SQLite store: lines answered in order of the
file and recorded once, errors in the error file, a batch past its window expired."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from inferlab.batches.files import FileService
from inferlab.batches.lines import caller_record
from inferlab.batches.model import BatchRecord
from inferlab.batches.runner import BATCH_ROUTE, ChainBatchRunner
from inferlab.config.batches import BatchSettings
from inferlab.errors import InvalidRequest, ServiceUnavailable
from inferlab.pipeline import Call, Chain, Next, Reply
from inferlab.router import ModelRouter
from inferlab.store import Database, upgrade
from inferlab.store.batches import SqlBatchStore
from inferlab.types import Caller, InferenceResponse

URL = "/v1/chat/completions"


class Engine:
    """The chain's last step: answers, refuses line 'bad', sheds line 'busy' once."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        self.calls.append(call)
        content = call.body["messages"][0]["content"]
        if content == "bad":
            raise InvalidRequest("no", param="messages")
        if content == "busy" and sum(c.body["messages"][0]["content"] == "busy" for c in self.calls) == 1:
            raise ServiceUnavailable("shed", retry_after=0.01)
        return Reply(response=InferenceResponse({"choices": [{"message": {"content": content.upper()}}]}, None))


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    found = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await upgrade(found)
    yield found
    await found.close()


async def setup(database: Database, tmp_path: Path, contents: list[str], expires_in: timedelta
                ) -> tuple[ChainBatchRunner, SqlBatchStore, FileService, Engine]:
    store = SqlBatchStore(database)
    files = FileService(store, tmp_path / "files", max_bytes=1 << 20)
    lines = [orjson.dumps({"custom_id": f"c{i}", "method": "POST", "url": URL,
                           "body": {"model": "m", "messages": [{"role": "user", "content": text}]}}) + b"\n"
             for i, text in enumerate(contents)]
    source = await files.write("t", "file-in", "in.jsonl", lines)
    now = datetime.now(UTC)
    await store.add_batch(BatchRecord(id="batch_1", tenant_id="t", endpoint=URL, input_file_id=source.id,
                                      completion_window="24h", status="validating", created_at=now,
                                      expires_at=now + expires_in, total=len(lines),
                                      caller=caller_record(Caller(tenant_id="t"))))
    engine = Engine()
    settings = BatchSettings(poll_s=0.02, retry_initial_s=0.01, concurrency=2)
    runner = ChainBatchRunner(store, files, Chain([engine]), ModelRouter([]), settings, logging.getLogger("test"))
    return runner, store, files, engine


async def run_until_done(runner: ChainBatchRunner, store: SqlBatchStore) -> BatchRecord:
    task = asyncio.get_running_loop().create_task(runner.run())
    try:
        for _ in range(500):
            found = await store.get_batch("t", "batch_1")
            assert found is not None
            if found.status in ("completed", "expired", "cancelled", "failed"):
                return found
            await asyncio.sleep(0.01)
        raise AssertionError("the batch did not finish")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def lines_of(content: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in content.splitlines()]


async def test_lines_are_answered_once_errors_apart_shed_lines_retried(database: Database, tmp_path: Path) -> None:
    runner, store, files, engine = await setup(database, tmp_path, ["a", "bad", "busy", "d"], timedelta(hours=1))
    done = await run_until_done(runner, store)
    assert (done.status, done.completed, done.failed) == ("completed", 3, 1)
    assert all(call.batch and call.route == BATCH_ROUTE and call.caller.tenant_id == "t" for call in engine.calls)
    assert len(engine.calls) == 5  # 'busy' was shed once, then answered
    assert done.output_file_id is not None and done.error_file_id is not None
    output = lines_of(await files.read("t", done.output_file_id))
    assert [(o["custom_id"], o["response"]["body"]["choices"][0]["message"]["content"]) for o in output] == [
        ("c0", "A"), ("c2", "BUSY"), ("c3", "D")]
    errors = lines_of(await files.read("t", done.error_file_id))
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("c1", 400)]


async def test_a_batch_past_its_window_expires_with_its_lines_in_the_error_file(database: Database,
                                                                              tmp_path: Path) -> None:
    runner, store, files, engine = await setup(database, tmp_path, ["a", "b"], timedelta(seconds=-1))
    done = await run_until_done(runner, store)
    assert done.status == "expired" and done.expired_at is not None and engine.calls == []
    assert done.error_file_id is not None and done.output_file_id is None
    errors = lines_of(await files.read("t", done.error_file_id))
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [("c0", "batch_expired"), ("c1", "batch_expired")]


class CountingStore(SqlBatchStore):
    """The real store, counting the runner's looks for work."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.claims = 0

    async def claim(self, owner: str, now: datetime, until: datetime) -> BatchRecord | None:
        self.claims += 1
        return await super().claim(owner, now, until)


async def test_an_idle_runner_looks_less_and_less_often_and_a_wake_up_looks_at_once(database: Database,
                                                                                    tmp_path: Path) -> None:
    store = CountingStore(database)
    files = FileService(store, tmp_path / "files", max_bytes=1 << 20)
    settings = BatchSettings(poll_s=0.01, idle_poll_s=0.16, lease_s=30)
    runner = ChainBatchRunner(store, files, Chain([Engine()]), ModelRouter([]), settings, logging.getLogger("test"))
    task = asyncio.get_running_loop().create_task(runner.run())
    try:
        await asyncio.sleep(1.0)
        # 0.01 + 0.02 + 0.04 + 0.08 = 0.15 s of doubling, then one look each 0.16 s: about 10 in a
        # second (a fixed poll_s would have looked ~100 times)
        assert 5 <= store.claims <= 14, store.claims
        before = store.claims
        runner.wake()
        await asyncio.sleep(0.005)
        assert store.claims == before + 1  # at once, not at the end of the idle wait
        await asyncio.sleep(0.1)
        assert store.claims >= before + 3  # the wait started again from poll_s
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
