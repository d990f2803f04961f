"""The Batch API's routes: files (``/v1/files``: multipart upload, read, content, delete) and
batches (``/v1/batches``: create, read, list, cancel), the caller's tenant's only (404 for
another tenant's). The work is the batch runner's (``batches/runner.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from inferlab.api.middleware import read_json
from inferlab.api.routes import Param, RouteSpec, Schema, add_routes
from inferlab.api.validation import RequestValidator
from inferlab.auth.policy import INFERENCE
from inferlab.batches.model import FileRecord
from inferlab.batches.service import BatchService
from inferlab.errors import InvalidRequest, PayloadTooLarge
from inferlab.types import Caller

FILE = Schema("File", {"type": "object", "properties": {
    "id": {"type": "string"}, "object": {"const": "file"}, "bytes": {"type": "integer"},
    "created_at": {"type": "integer"}, "filename": {"type": "string"}, "purpose": {"type": "string"}}})
FILE_LIST = Schema("FileList", {"type": "object", "properties": {"data": {"type": "array", "items": FILE.json}}})
FILE_DELETED = Schema("FileDeleted", {"type": "object", "properties": {
    "id": {"type": "string"}, "object": {"const": "file"}, "deleted": {"type": "boolean"}}})
UPLOAD = Schema("FileUpload", {"type": "object", "required": ["file", "purpose"], "description":
                               "multipart/form-data: `file` (JSONL), `purpose` (`batch`)",
                               "properties": {"file": {"type": "string", "format": "binary"},
                                              "purpose": {"const": "batch"}}})
JSONL = Schema("JsonLines", {"type": "string", "description": "the file's bytes (JSONL)"})
BATCH_REQUEST = Schema("BatchCreateRequest", {"type": "object", "required": ["input_file_id", "endpoint",
                                                                               "completion_window"],
                       "properties": {"input_file_id": {"type": "string"},
                                      "endpoint": {"enum": ["/v1/chat/completions", "/v1/completions",
                                                            "/v1/embeddings"]},
                                      "completion_window": {"const": "24h"}, "metadata": {"type": "object"}}})
BATCH = Schema("Batch", {"type": "object", "properties": {
    "id": {"type": "string"}, "object": {"const": "batch"}, "status": {"type": "string"},
    "request_counts": {"type": "object"}, "output_file_id": {"type": ["string", "null"]},
    "error_file_id": {"type": ["string", "null"]}}})
BATCH_LIST = Schema("BatchList", {"type": "object", "properties": {"data": {"type": "array", "items": BATCH.json},
                                                                    "has_more": {"type": "boolean"}}})
FILE_ID = Param("file_id", "the file's id", where="path")
BATCH_ID = Param("batch_id", "the batch's id", where="path")
LIMIT = Param("limit", "at most this many (1-100, default 20)", schema={"type": "integer"})
MAX_LIST = 100
MULTIPART_FRAMING_BYTES = 64 * 1024  # an upload's body: the file, its part headers and the purpose field


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
        raise InvalidRequest(f"'limit' must be an integer from 1 to {MAX_LIST}", param="limit", code="invalid_value")
    return int(raw)


class BatchRoutes:
    def __init__(self, batches: BatchService, validator: RequestValidator, caller_of: Callable[[web.Request], Caller],
                 *, max_body_bytes: int) -> None:
        self._batches = batches
        self._files = batches.files
        self._validator = validator
        self._caller_of = caller_of
        self._max_body_bytes = max_body_bytes

    def routes(self) -> list[RouteSpec]:
        tags = ("batch",)
        return [
            RouteSpec("POST", "/v1/files", self.upload, INFERENCE, "Upload a file (purpose `batch`, JSONL)", tags,
                      UPLOAD, FILE, errors=(400, 413), max_body_bytes=self._upload_limit),
            RouteSpec("GET", "/v1/files", self.list_files, INFERENCE, "The caller's tenant's files", tags,
                      response=FILE_LIST, params=(LIMIT, Param("purpose", "only files of this purpose")),
                      errors=(400,)),
            RouteSpec("GET", "/v1/files/{file_id}", self.get_file, INFERENCE, "Show a file", tags, response=FILE,
                      params=(FILE_ID,), errors=(404,)),
            RouteSpec("DELETE", "/v1/files/{file_id}", self.delete_file, INFERENCE, "Delete a file", tags,
                      response=FILE_DELETED, params=(FILE_ID,), errors=(404,)),
            RouteSpec("GET", "/v1/files/{file_id}/content", self.file_content, INFERENCE, "A file's bytes", tags,
                      response=JSONL, params=(FILE_ID,), errors=(404,)),
            RouteSpec("POST", "/v1/batches", self.create, INFERENCE, "Create a batch from an uploaded file", tags,
                      BATCH_REQUEST, BATCH, errors=(400, 404)),
            RouteSpec("GET", "/v1/batches", self.list_batches, INFERENCE, "The caller's tenant's batches, newest "
                      "first", tags, response=BATCH_LIST, params=(LIMIT, Param("after", "a batch id: those older")),
                      errors=(400,)),
            RouteSpec("GET", "/v1/batches/{batch_id}", self.get_batch, INFERENCE, "Show a batch", tags,
                      response=BATCH, params=(BATCH_ID,), errors=(404,)),
            RouteSpec("POST", "/v1/batches/{batch_id}/cancel", self.cancel, INFERENCE,
                      "Cancel a batch: no new lines start; the answered ones are in its files", tags,
                      response=BATCH, params=(BATCH_ID,), errors=(400, 404)),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    def _tenant(self, request: web.Request) -> str:
        return self._caller_of(request).tenant_id

    @property
    def _upload_limit(self) -> int:
        """The largest upload body: the largest file and its multipart framing."""
        return self._files.max_bytes + MULTIPART_FRAMING_BYTES

    async def upload(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise InvalidRequest("Upload the file as multipart/form-data", param="file", code="invalid_body")
        length = request.content_length
        if length is not None and length > self._upload_limit:  # refused by its declared size, unread
            raise PayloadTooLarge(f"The upload is larger than the {self._upload_limit} bytes this server accepts "
                                  f"(files up to {self._files.max_bytes} bytes)", param="file")
        tenant = self._tenant(request)
        reader = await request.multipart()
        purpose: str | None = None
        uploaded: FileRecord | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidRequest("Nested multipart bodies are not supported", param="file", code="invalid_body")
            if part.name == "purpose":
                purpose = (await part.read(decode=True))[:64].decode(errors="replace")
                if purpose != "batch":
                    break
            elif part.name == "file" and uploaded is None:
                uploaded = await self._files.upload(tenant, part.filename or "upload.jsonl", "batch", _chunks(part))
            else:
                await part.release()
        if purpose != "batch":
            if uploaded is not None:
                await self._files.delete(tenant, uploaded.id)
            raise InvalidRequest("'purpose' must be 'batch'", param="purpose", code="invalid_value")
        if uploaded is None:
            raise InvalidRequest("'file' is required", param="file", code="missing_required_parameter")
        return _json(uploaded.to_openai())

    async def list_files(self, request: web.Request) -> web.Response:
        found = await self._files.list(self._tenant(request), _limit(request), request.query.get("purpose"))
        return _json({"object": "list", "data": [f.to_openai() for f in found], "has_more": False})

    async def get_file(self, request: web.Request) -> web.Response:
        return _json((await self._files.get(self._tenant(request), request.match_info["file_id"])).to_openai())

    async def delete_file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        await self._files.delete(self._tenant(request), file_id)
        return _json({"id": file_id, "object": "file", "deleted": True})

    async def file_content(self, request: web.Request) -> web.Response:
        content = await self._files.read(self._tenant(request), request.match_info["file_id"])
        return web.Response(body=content, content_type="application/jsonl")

    async def create(self, request: web.Request) -> web.Response:
        body = await read_json(request, self._max_body_bytes)
        created = await self._batches.create(self._caller_of(request), body, self._validator.validate)
        return _json(created.to_openai())

    async def get_batch(self, request: web.Request) -> web.Response:
        return _json((await self._batches.get(self._tenant(request), request.match_info["batch_id"])).to_openai())

    async def list_batches(self, request: web.Request) -> web.Response:
        limit = _limit(request)
        found = await self._batches.list(self._tenant(request), limit + 1, request.query.get("after"))
        data = [b.to_openai() for b in found[:limit]]
        return _json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                      "last_id": data[-1]["id"] if data else None, "has_more": len(found) > limit})

    async def cancel(self, request: web.Request) -> web.Response:
        return _json((await self._batches.cancel(self._tenant(request), request.match_info["batch_id"])).to_openai())


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(256 * 1024):
        yield chunk
