"""Batch API files: the bytes in the data directory (one folder per tenant, written to a temporary
name, fsynced, then renamed), the record in the store. A tenant reaches only its own files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from inferlab.batches.model import FILE_PURPOSES, FileRecord
from inferlab.errors import InvalidRequest, NotFound, PayloadTooLarge


class FileRecords(Protocol):
    async def put_file(self, record: FileRecord) -> None: ...

    async def get_file(self, tenant_id: str, file_id: str) -> FileRecord | None: ...

    async def list_files(self, tenant_id: str, limit: int, purpose: str | None = None) -> Sequence[FileRecord]: ...

    async def delete_file(self, tenant_id: str, file_id: str) -> bool: ...


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


def _write_all(path: Path, parts: Iterable[bytes]) -> int:
    """Write to a temporary name, fsync, rename: a file is whole or absent (blocking: in a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".part")
    size = 0
    with temporary.open("wb") as out:
        for part in parts:
            out.write(part)
            size += len(part)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    return size


class FileService:
    def __init__(self, records: FileRecords, root: Path, *, max_bytes: int) -> None:
        self._records = records
        self._root = root
        self.max_bytes = max_bytes

    def path(self, tenant_id: str, file_id: str) -> Path:
        folder = hashlib.sha256(tenant_id.encode()).hexdigest()[:32]  # any tenant id, never a path
        return self._root / folder / file_id

    async def upload(self, tenant_id: str, filename: str, purpose: str, chunks: AsyncIterator[bytes]) -> FileRecord:
        """Store an upload, at most ``max_bytes`` (413 beyond, nothing kept)."""
        if purpose != "batch":
            raise InvalidRequest("Only purpose 'batch' is supported", param="purpose", code="invalid_value")
        file_id = new_file_id()
        path = self.path(tenant_id, file_id)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        out: IO[bytes] = await asyncio.to_thread(temporary.open, "wb")
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise PayloadTooLarge(f"The file is larger than {self.max_bytes} bytes", param="file",
                                          code="file_too_large")
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(out.flush)
            await asyncio.to_thread(os.fsync, out.fileno())
        except BaseException:
            await asyncio.to_thread(out.close)
            await asyncio.to_thread(temporary.unlink, missing_ok=True)
            raise
        await asyncio.to_thread(out.close)
        await asyncio.to_thread(os.replace, temporary, path)
        record = FileRecord(file_id, tenant_id, filename[:256] or "upload.jsonl", purpose, size, datetime.now(UTC))
        await self._records.put_file(record)
        return record

    async def write(self, tenant_id: str, file_id: str, filename: str, lines: list[bytes]) -> FileRecord:
        """A file the gateway makes (a batch's output or errors); writing it again replaces it."""
        size = await asyncio.to_thread(_write_all, self.path(tenant_id, file_id), lines)
        record = FileRecord(file_id, tenant_id, filename, "batch_output", size, datetime.now(UTC))
        await self._records.put_file(record)
        return record

    async def get(self, tenant_id: str, file_id: str) -> FileRecord:
        record = await self._records.get_file(tenant_id, file_id)
        if record is None:
            raise NotFound(f"No such file: '{file_id}'", param="file_id", code="file_not_found")
        return record

    async def read(self, tenant_id: str, file_id: str) -> bytes:
        await self.get(tenant_id, file_id)
        try:
            return await asyncio.to_thread(self.path(tenant_id, file_id).read_bytes)
        except FileNotFoundError:
            raise NotFound(f"The content of file '{file_id}' is gone", param="file_id",
                           code="file_not_found") from None

    async def list(self, tenant_id: str, limit: int, purpose: str | None) -> Sequence[FileRecord]:
        if purpose is not None and purpose not in FILE_PURPOSES:
            raise InvalidRequest(f"Unknown purpose {purpose!r}", param="purpose", code="invalid_value")
        return await self._records.list_files(tenant_id, limit, purpose)

    async def delete(self, tenant_id: str, file_id: str) -> None:
        if not await self._records.delete_file(tenant_id, file_id):
            raise NotFound(f"No such file: '{file_id}'", param="file_id", code="file_not_found")
        await asyncio.to_thread(self.path(tenant_id, file_id).unlink, missing_ok=True)
