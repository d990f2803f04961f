"""Batches for the API: create (the input checked whole first), read, list and cancel — the
caller's tenant's only. The runner does the work; it is woken when there is some."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from inferlab.batches.files import FileService
from inferlab.batches.lines import Validate, caller_record, parse_lines
from inferlab.batches.model import BatchRecord
from inferlab.batches.runner import BatchRunner
from inferlab.config.batches import BatchSettings
from inferlab.errors import InvalidRequest, NotFound, PermissionDenied
from inferlab.types import Caller

WINDOWS = {"24h": timedelta(hours=24)}


class BatchBook(Protocol):
    async def add_batch(self, record: BatchRecord) -> None: ...

    async def get_batch(self, tenant_id: str | None, batch_id: str) -> BatchRecord | None: ...

    async def list_batches(self, tenant_id: str, limit: int, after: str | None = None) -> Sequence[BatchRecord]: ...

    async def update_batch(self, batch_id: str, only_from: Sequence[str] | None, changes: dict[str, Any]) -> bool: ...


class BatchService:
    def __init__(self, store: BatchBook, files: FileService, runner: BatchRunner, settings: BatchSettings) -> None:
        self._store = store
        self.files = files
        self.runner = runner
        self._settings = settings

    async def create(self, caller: Caller, body: Any, validate: Validate) -> BatchRecord:
        if not isinstance(body, dict):
            raise InvalidRequest("Expected a JSON object", code="invalid_body")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                raise InvalidRequest(f"'{name}' is required", param=name, code="missing_required_parameter")
        unknown = set(body) - {"input_file_id", "endpoint", "completion_window", "metadata"}
        if unknown:
            name = min(unknown)
            raise InvalidRequest(f"The field '{name}' is not supported", param=name, code="unsupported_parameter")
        window = body["completion_window"]
        if window != self._settings.completion_window or window not in WINDOWS:
            raise InvalidRequest(f"'completion_window' must be {self._settings.completion_window!r}",
                                 param="completion_window", code="invalid_value")
        metadata = body.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16 or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
            raise InvalidRequest("'metadata': at most 16 string keys with string values", param="metadata",
                                 code="invalid_value")
        source = await self.files.get(caller.tenant_id, body["input_file_id"])
        if source.purpose != "batch":
            raise InvalidRequest("The input file's purpose must be 'batch'", param="input_file_id",
                                 code="invalid_value")
        lines = parse_lines(await self.files.read(caller.tenant_id, source.id), body["endpoint"], validate,
                            max_lines=self._settings.max_lines)
        for line in lines:  # a model-scoped key reaches only its models, in a batch as on its own
            model = line.body.get("model")
            if not isinstance(model, str) or not caller.may_use(model):
                raise PermissionDenied(f"Line {line.line + 1} of the input file: this key may not use the model "
                                       f"{model!r}", param="input_file_id", code="model_not_allowed")
        now = datetime.now(UTC)
        record = BatchRecord(id="batch_" + secrets.token_hex(12), tenant_id=caller.tenant_id,
                             endpoint=body["endpoint"], input_file_id=source.id, completion_window=window,
                             status="validating", created_at=now, expires_at=now + WINDOWS[window], total=len(lines),
                             caller=caller_record(caller), metadata=metadata)
        await self._store.add_batch(record)
        self.runner.wake()
        return record

    async def get(self, tenant_id: str, batch_id: str) -> BatchRecord:
        found = await self._store.get_batch(tenant_id, batch_id)
        if found is None:
            raise NotFound(f"No such batch: '{batch_id}'", param="batch_id", code="batch_not_found")
        return found

    async def list(self, tenant_id: str, limit: int, after: str | None) -> Sequence[BatchRecord]:
        return await self._store.list_batches(tenant_id, limit, after)

    async def cancel(self, tenant_id: str, batch_id: str) -> BatchRecord:
        found = await self.get(tenant_id, batch_id)
        if found.status in ("validating", "in_progress"):
            await self._store.update_batch(batch_id, ("validating", "in_progress"),
                                           {"status": "cancelling", "cancelling_at": datetime.now(UTC)})
            self.runner.cancel(batch_id)
            found = await self.get(tenant_id, batch_id)
        elif found.status not in ("cancelling", "cancelled"):
            raise InvalidRequest(f"A batch that is {found.status} cannot be cancelled", param="batch_id",
                                 code="batch_not_cancellable")
        return found
