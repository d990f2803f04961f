"""Files and batches as the gateway keeps them, and in the OpenAI API's shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")  # the runner still owes work
FILE_PURPOSES = ("batch", "batch_output")


def epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    tenant_id: str
    filename: str
    purpose: str
    bytes: int
    created_at: datetime

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": epoch(self.created_at),
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "status_details": None}


@dataclass(slots=True)
class BatchRecord:
    id: str
    tenant_id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: str
    created_at: datetime
    expires_at: datetime
    total: int
    caller: dict[str, Any]  # who the lines run as: tenant, user, key, role, models
    metadata: dict[str, str] | None = None
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    in_progress_at: datetime | None = None
    finalizing_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    cancelling_at: datetime | None = None
    cancelled_at: datetime | None = None
    expired_at: datetime | None = None
    errors: list[dict[str, Any]] | None = field(default=None)

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "batch", "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": self.status, "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
            "created_at": epoch(self.created_at), "in_progress_at": epoch(self.in_progress_at),
            "expires_at": epoch(self.expires_at), "finalizing_at": epoch(self.finalizing_at),
            "completed_at": epoch(self.completed_at), "failed_at": epoch(self.failed_at), "expired_at": epoch(self.expired_at),
            "cancelling_at": epoch(self.cancelling_at), "cancelled_at": epoch(self.cancelled_at),
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class LineResult:
    """One answered line: its place in the input, and its line of the output or error file."""

    line: int
    custom_id: str
    ok: bool
    result: dict[str, Any]
