"""``BatchStore`` over SQLAlchemy: Batch API files' records, batches, and their answered lines.

A line's answer and the batch's counts change in one transaction, and the line's primary key
(batch, line) makes a second answer of the same line impossible. A runner holds a batch by a
lease (``owner``, ``lease_until``) taken and renewed with conditional updates, so two gateways
sharing the database never run one batch at once, and a batch whose runner died is taken over
once its lease ran out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from inferlab.batches.model import ACTIVE, BatchRecord, FileRecord, LineResult
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import BatchLineRow, BatchRow, FileRow

BATCH_FIELDS = tuple(f.name for f in fields(BatchRecord))


def _file(row: FileRow) -> FileRecord:
    return FileRecord(row.id, row.tenant_id, row.filename, row.purpose, row.bytes, row.created_at)


def _batch(row: BatchRow) -> BatchRecord:
    values = {name: getattr(row, "metadata_" if name == "metadata" else name) for name in BATCH_FIELDS}
    return BatchRecord(**values)


def _columns(changes: dict[str, Any]) -> dict[str, Any]:
    return {("metadata_" if key == "metadata" else key): value for key, value in changes.items()}


class SqlBatchStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- files ------------------------------------------------------------------------------------

    @bounded
    async def put_file(self, record: FileRecord) -> None:
        async with self._db.sessions.begin() as session:
            await session.merge(FileRow(id=record.id, tenant_id=record.tenant_id, filename=record.filename,
                                        purpose=record.purpose, bytes=record.bytes, created_at=record.created_at))

    @bounded
    async def get_file(self, tenant_id: str, file_id: str) -> FileRecord | None:
        async with self._db.sessions() as session:
            row = await session.get(FileRow, file_id)
        return _file(row) if row is not None and row.tenant_id == tenant_id else None

    @bounded
    async def list_files(self, tenant_id: str, limit: int, purpose: str | None = None) -> Sequence[FileRecord]:
        query = select(FileRow).where(FileRow.tenant_id == tenant_id).order_by(FileRow.created_at.desc()).limit(limit)
        if purpose is not None:
            query = query.where(FileRow.purpose == purpose)
        async with self._db.sessions() as session:
            return [_file(row) for row in (await session.scalars(query)).all()]

    @bounded
    async def delete_file(self, tenant_id: str, file_id: str) -> bool:
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(FileRow).where(FileRow.id == file_id, FileRow.tenant_id == tenant_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- batches ----------------------------------------------------------------------------------

    @bounded
    async def add_batch(self, record: BatchRecord) -> None:
        async with self._db.sessions.begin() as session:
            session.add(BatchRow(**_columns({name: getattr(record, name) for name in BATCH_FIELDS})))

    @bounded
    async def get_batch(self, tenant_id: str | None, batch_id: str) -> BatchRecord | None:
        async with self._db.sessions() as session:
            row = await session.get(BatchRow, batch_id)
        return _batch(row) if row is not None and tenant_id in (None, row.tenant_id) else None

    @bounded
    async def list_batches(self, tenant_id: str, limit: int, after: str | None = None) -> Sequence[BatchRecord]:
        query = select(BatchRow).where(BatchRow.tenant_id == tenant_id)
        async with self._db.sessions() as session:
            if after is not None:
                anchor = await session.get(BatchRow, after)
                if anchor is not None and anchor.tenant_id == tenant_id:
                    query = query.where(or_(BatchRow.created_at < anchor.created_at,
                                            (BatchRow.created_at == anchor.created_at) & (BatchRow.id < anchor.id)))
            query = query.order_by(BatchRow.created_at.desc(), BatchRow.id.desc()).limit(limit)
            return [_batch(row) for row in (await session.scalars(query)).all()]

    @bounded
    async def update_batch(self, batch_id: str, only_from: Sequence[str] | None, changes: dict[str, Any]) -> bool:
        """Change a batch; with ``only_from``, only while its status is one of those."""
        statement = update(BatchRow).where(BatchRow.id == batch_id).values(**_columns(changes))
        if only_from is not None:
            statement = statement.where(BatchRow.status.in_(only_from))
        async with self._db.sessions.begin() as session:
            result = await session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @bounded
    async def claim(self, owner: str, now: datetime, until: datetime) -> BatchRecord | None:
        """The oldest batch the runner still owes work, unheld or whose lease ran out, now held by ``owner``."""
        query = (select(BatchRow.id).where(BatchRow.status.in_(ACTIVE),
                                           or_(BatchRow.lease_until.is_(None), BatchRow.lease_until < now,
                                               BatchRow.owner == owner))
                 .order_by(BatchRow.created_at).limit(5))
        async with self._db.sessions.begin() as session:
            for batch_id in (await session.scalars(query)).all():
                taken = await session.execute(
                    update(BatchRow).where(BatchRow.id == batch_id,
                                           or_(BatchRow.lease_until.is_(None), BatchRow.lease_until < now,
                                               BatchRow.owner == owner))
                    .values(owner=owner, lease_until=until))
                if taken.rowcount:  # type: ignore[attr-defined]
                    row = await session.get(BatchRow, batch_id)
                    if row is not None:
                        await session.refresh(row)
                        return _batch(row)
        return None

    @bounded
    async def renew(self, batch_id: str, owner: str, until: datetime) -> str | None:
        """Extend the lease; the batch's status, or ``None`` when another runner holds it now."""
        async with self._db.sessions.begin() as session:
            result = await session.execute(update(BatchRow).where(BatchRow.id == batch_id, BatchRow.owner == owner)
                                           .values(lease_until=until))
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            return await session.scalar(select(BatchRow.status).where(BatchRow.id == batch_id))

    # -- lines ------------------------------------------------------------------------------------

    @bounded
    async def answered(self, batch_id: str) -> set[int]:
        async with self._db.sessions() as session:
            return set((await session.scalars(select(BatchLineRow.line).where(BatchLineRow.batch_id == batch_id))).all())

    @bounded
    async def record(self, batch_id: str, answer: LineResult, now: datetime) -> bool:
        """The line's answer and the batch's counts, in one transaction; ``False`` if already answered."""
        try:
            async with self._db.sessions.begin() as session:
                session.add(BatchLineRow(batch_id=batch_id, line=answer.line, custom_id=answer.custom_id, ok=answer.ok,
                                         result=answer.result, finished_at=now))
                await session.flush()
                counter = BatchRow.completed if answer.ok else BatchRow.failed
                await session.execute(update(BatchRow).where(BatchRow.id == batch_id)
                                      .values({counter: counter + 1}))
        except IntegrityError:
            return False
        return True

    @bounded
    async def results(self, batch_id: str) -> Sequence[LineResult]:
        query = select(BatchLineRow).where(BatchLineRow.batch_id == batch_id).order_by(BatchLineRow.line)
        async with self._db.sessions() as session:
            return [LineResult(row.line, row.custom_id, row.ok, row.result)
                    for row in (await session.scalars(query)).all()]
