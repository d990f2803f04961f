"""The batch runner: a background service that answers batch lines through the request chain.

It holds one batch at a time by a lease in the store (renewed while it works; another gateway
takes the batch over once the lease runs out), and runs its unanswered lines a few at a time as
calls of the lowest, sheddable priority class (``Call.batch``), only while the model's pool has
more free slots than ``reserve_slots`` — interactive traffic goes first. A line shed or refused
for load (429, 503) is retried with backoff; any other answer is final. Each line's answer is
written to the store before the worker takes another line, so a gateway killed mid-batch resumes
where it stopped and never answers a line twice (a line in flight at the kill is run again: its
answer had not been recorded). At the end the output and error files are written in OpenAI's
JSONL and the batch is completed (or cancelled, with what was answered by then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from inferlab.batches.files import FileService
from inferlab.batches.lines import KIND_OF, BatchLine, caller_of, parse_lines
from inferlab.batches.model import BatchRecord, FileRecord, LineResult
from inferlab.config.batches import BatchSettings
from inferlab.errors import InferLabError, PermissionDenied, RateLimited, ServiceUnavailable, StoreUnavailable
from inferlab.pipeline import SUCCESS, Call, Chain, ending_of, estimate_prompt_tokens
from inferlab.pipeline.usage import UsageMeter
from inferlab.router import ModelRouter
from inferlab.types import Caller

BATCH_ROUTE = "/v1/batches"  # the route batch lines are metered under: the price book's batch rates
Clock = Callable[[], datetime]


class BatchRunner(Protocol):
    """The background service: run (from start to stop), and be told of new work or a cancel."""

    async def run(self) -> None: ...

    def wake(self) -> None: ...

    def cancel(self, batch_id: str) -> None:
        """Stop starting lines of the batch (if this runner holds it); the lines in flight finish."""
        ...


class BatchRecords(Protocol):
    async def claim(self, owner: str, now: datetime, until: datetime) -> BatchRecord | None: ...

    async def renew(self, batch_id: str, owner: str, until: datetime) -> str | None: ...

    async def update_batch(self, batch_id: str, only_from: Sequence[str] | None, changes: dict[str, Any]) -> bool: ...

    async def answered(self, batch_id: str) -> set[int]: ...

    async def record(self, batch_id: str, answer: LineResult, now: datetime) -> bool: ...

    async def results(self, batch_id: str) -> Sequence[LineResult]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def output_file_ids(batch_id: str) -> tuple[str, str]:
    """The output and error files' ids: fixed per batch, so a finalisation done twice writes them once."""
    suffix = batch_id.removeprefix("batch_")
    return f"file-{suffix}-output", f"file-{suffix}-errors"


class ChainBatchRunner:
    def __init__(self, store: BatchRecords, files: FileService, chain: Chain, router: ModelRouter,
                 settings: BatchSettings, logger: logging.Logger, *, clock: Clock = _utcnow) -> None:
        self._store = store
        self._files = files
        self._chain = chain
        self._router = router
        self._settings = settings
        self._log = logger
        self._clock = clock
        self.owner = "runner-" + secrets.token_hex(8)
        self._wake = asyncio.Event()
        self._capacity = asyncio.Event()
        self._cancelled: set[str] = set()
        for _, pool in router.all_pools():
            pool.subscribe(lambda _pool: self._capacity.set())

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, batch_id: str) -> None:
        self._cancelled.add(batch_id)
        self._wake.set()

    def _until(self) -> datetime:
        return self._clock() + timedelta(seconds=self._settings.lease_s)

    async def run(self) -> None:
        """Claim and run batches until cancelled (the gateway stops). While there is nothing to
        claim, the wait between looks doubles from ``poll_s`` to ``idle_poll_s`` (capped by the lease,
        so a batch another gateway abandoned is taken over in time); a wake-up resets it."""
        idle = self._settings.poll_s
        longest = max(self._settings.poll_s, min(self._settings.idle_poll_s, self._settings.lease_s))
        while True:
            self._wake.clear()
            try:
                batch = await self._store.claim(self.owner, self._clock(), self._until())
            except StoreUnavailable as exc:  # the store is down: try again at the next poll
                self._log.warning("claiming a batch failed: %s", exc.message)
                batch = None
            except Exception:  # noqa: BLE001 - logged; tried again at the next poll
                self._log.exception("claiming a batch failed")
                batch = None
            if batch is None:
                woken = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle):
                        woken = await self._wake.wait()
                idle = self._settings.poll_s if woken else min(idle * 2, longest)
                continue
            idle = self._settings.poll_s
            try:
                await self._run(batch)
            except Exception:  # noqa: BLE001 - logged; the lease runs out and the batch is taken again
                self._log.exception("running a batch failed", extra={"batch": batch.id})
                await asyncio.sleep(self._settings.poll_s)

    async def _run(self, batch: BatchRecord) -> None:
        now = self._clock()
        if batch.status == "validating":
            await self._store.update_batch(batch.id, ("validating",), {"status": "in_progress", "in_progress_at": now})
            batch.status = "in_progress"
        if batch.status in ("in_progress", "cancelling"):
            try:
                lines = parse_lines(await self._files.read(batch.tenant_id, batch.input_file_id), batch.endpoint)
            except InferLabError as exc:
                await self._store.update_batch(batch.id, None, {
                    "status": "failed", "failed_at": self._clock(), "owner": None,
                    "errors": [{"code": exc.code, "message": exc.message, "param": exc.param, "line": None}]})
                return
            if batch.status == "in_progress" and not await self._answer_all(batch, lines):
                return  # the lease was lost to another runner, or the batch expired (and was finalised)
        await self._finalize(batch)

    async def _answer_all(self, batch: BatchRecord, lines: list[BatchLine]) -> bool:
        answered = await self._store.answered(batch.id)
        pending = deque(line for line in lines if line.line not in answered)
        caller = caller_of(batch.caller)
        state = {"status": batch.status}

        async def worker() -> None:
            while pending and state["status"] == "in_progress" and batch.id not in self._cancelled:
                if self._clock() >= batch.expires_at:  # its completion window is over: the rest expire
                    state["status"] = "expiring"
                    return
                line = pending.popleft()
                result = await self._answer(batch, line, caller)
                await self._store.record(batch.id, result, self._clock())  # durable before the next line

        async def keep_lease() -> None:
            while True:
                await asyncio.sleep(self._settings.lease_s / 3)
                state["status"] = await self._store.renew(batch.id, self.owner, self._until()) or "lost"

        renewing = asyncio.get_running_loop().create_task(keep_lease())
        try:
            await asyncio.gather(*(worker() for _ in range(self._settings.concurrency)))
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await renewing
        if state["status"] == "expiring":
            await self._expire(batch, list(pending))
            return False
        if state["status"] == "lost":
            self._log.warning("a batch's lease was lost to another runner", extra={"batch": batch.id})
            return False
        self._cancelled.discard(batch.id)
        batch.status = await self._store.renew(batch.id, self.owner, self._until()) or "lost"
        return batch.status != "lost"

    async def _room(self, model: str, line: BatchLine, batch: BatchRecord) -> None:
        """Wait until the model's pool has more free slots than ``reserve_slots``: interactive first."""
        try:
            pool = self._router.pool(model, KIND_OF[batch.endpoint])
        except InferLabError:
            return  # the chain answers the unknown model
        reserve = min(self._settings.reserve_slots, max(pool.slots() - 1, 0))
        while pool.free_slots() <= reserve:
            self._capacity.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.poll_s):
                    await self._capacity.wait()

    async def _answer(self, batch: BatchRecord, line: BatchLine, caller: Caller) -> LineResult:
        model = str(line.body.get("model") or "")
        delay = self._settings.retry_initial_s
        for attempt in range(1, self._settings.max_attempts + 1):
            await self._room(model, line, batch)
            request_id = f"{batch.id}-{line.line}-{attempt}"
            try:
                body = await self._call(batch, line, caller, model, request_id)
            except (RateLimited, ServiceUnavailable) as exc:
                if attempt == self._settings.max_attempts:
                    return self._result(line, request_id, exc.status, exc.to_payload())
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.retry_max_s)
                continue
            except InferLabError as exc:
                return self._result(line, request_id, exc.status, exc.to_payload())
            return self._result(line, request_id, 200, body)
        raise AssertionError("unreachable")

    async def _call(self, batch: BatchRecord, line: BatchLine, caller: Caller, model: str,
                    request_id: str) -> dict[str, Any]:
        if not caller.may_use(model):  # checked at creation too: the key's models, as the API checks them
            raise PermissionDenied(f"This key may not use the model '{model}'", code="model_not_allowed",
                                   param="model")
        call = Call(request_id=request_id, kind=KIND_OF[batch.endpoint], route=BATCH_ROUTE, model=model,
                    body=dict(line.body), caller=caller, batch=True, cache_mode="bypass",
                    usage=UsageMeter(estimate_prompt_tokens(line.size)))
        reply = await self._chain(call)  # on an error the chain has ended the call
        if call.interrupted is not None:
            await call.end(ending_of(call.interrupted))
            raise call.interrupted
        await call.finish()
        if reply.replay is not None:
            body: dict[str, Any] = orjson.loads(reply.replay)
        elif reply.response is not None:
            body = reply.response.body
        else:
            await call.end(SUCCESS)
            raise InferLabError("the chain answered a batch line with a stream")
        await call.end(SUCCESS)
        return body

    @staticmethod
    def _result(line: BatchLine, request_id: str, status: int, body: dict[str, Any]) -> LineResult:
        return LineResult(line.line, line.custom_id, status == 200, {
            "id": "batch_req_" + secrets.token_hex(12), "custom_id": line.custom_id,
            "response": {"status_code": status, "request_id": request_id, "body": body}, "error": None})

    async def _expire(self, batch: BatchRecord, left: list[BatchLine]) -> None:
        """The window is over: each line not answered is a line of the error file, and the batch expired."""
        error = {"code": "batch_expired", "message": "This request could not be executed before the completion "
                 "window expired.", "param": None, "line": None}
        for line in left:
            await self._store.record(batch.id, LineResult(line.line, line.custom_id, False, {
                "id": "batch_req_" + secrets.token_hex(12), "custom_id": line.custom_id, "response": None,
                "error": {"code": error["code"], "message": error["message"]}}), self._clock())
        batch.status = "expired"
        await self._finalize(batch)

    async def _finalize(self, batch: BatchRecord) -> None:
        cancelled, expired = batch.status == "cancelling", batch.status == "expired"
        now = self._clock()
        if not cancelled and not expired:
            await self._store.update_batch(batch.id, ("in_progress",), {"status": "finalizing", "finalizing_at": now})
        results = await self._store.results(batch.id)
        output_id, error_id = output_file_ids(batch.id)
        good = [orjson.dumps(r.result) + b"\n" for r in results if r.ok]
        bad = [orjson.dumps(r.result) + b"\n" for r in results if not r.ok]
        written: list[FileRecord] = []
        if good:
            written.append(await self._files.write(batch.tenant_id, output_id, f"{batch.id}_output.jsonl", good))
        if bad:
            written.append(await self._files.write(batch.tenant_id, error_id, f"{batch.id}_errors.jsonl", bad))
        status = "cancelled" if cancelled else "expired" if expired else "completed"
        final = {"status": status, "owner": None, "lease_until": None,
                 "output_file_id": output_id if good else None, "error_file_id": error_id if bad else None,
                 {"cancelled": "cancelled_at", "expired": "expired_at"}.get(status, "completed_at"): self._clock()}
        await self._store.update_batch(batch.id, None, final)
        self._log.info("batch finished", extra={"batch": batch.id, "status": final["status"],
                                                "completed": len(good), "failed": len(bad)})
