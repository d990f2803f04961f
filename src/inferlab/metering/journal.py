"""The outbox's journal: every usage event appended to a file on the request path, one write each.

An ``os.write`` to a file opened ``O_APPEND`` returns once the bytes are in the kernel's page
cache: from then on the event survives the gateway being killed (``kill -9``), with no thread
hand-off and no wait. The outbox's writer copies the events into its SQLite file in batches, as
before; the journal only has to hold them until it has.

The journal is a directory of numbered segments (``000001.jsonl``: one JSON event per line). The
event loop appends to the newest; past ``segment_bytes`` or ``segment_age_s`` it starts the next
and tells the writer, through the outbox's buffer, that the old one is complete. Once the writer
has committed everything queued before that marker, the old segment is deleted. At start, any
segment left (a killed process) is read back into the outbox before anything else is written:
events the writer had already committed are written again, and the store skips them (it keeps
each event id once), so nothing is lost and nothing is counted twice.

Like the SQLite commits it fronts, the journal is not fsynced per event: a power cut loses what
the syncer had not fsynced yet (``flush_interval_ms``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger("inferlab.metering")

SUFFIX = ".jsonl"
SEGMENT_BYTES = 8 * 1024 * 1024
SEGMENT_AGE_S = 60.0


@dataclass(frozen=True, slots=True)
class Completed:
    """In the outbox's buffer: segment ``number`` holds nothing newer; delete it once everything
    before this marker is committed — unless ``keep`` (an event of it never reached the buffer)."""

    number: int
    keep: bool


class Journal:
    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES, segment_age_s: float = SEGMENT_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._segment_age_s = segment_age_s
        self._clock = clock
        self._fd: int | None = None
        self._number = 0
        self._written = 0
        self._opened_at = 0.0
        self._keep = False
        self.failures = 0

    # -- start and stop (an executor thread) -------------------------------------------------------

    def leftovers(self) -> list[Path]:
        """Segments a previous process left, oldest first."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def open(self) -> None:
        """Start a segment numbered after any left over (call after they are read and removed)."""
        left = [int(path.stem) for path in self.leftovers() if path.stem.isdigit()]
        self._number = max(left, default=0)
        self._open_next()

    def close(self, remove: bool) -> None:
        """Stop appending; with ``remove``, delete the segments whose events are all committed."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if remove and not self._keep:
            self.remove(self._number)

    # -- the request path (the event loop's thread) ------------------------------------------------

    def append(self, payload: bytes) -> bool:
        """Append one event; False when the file refused it (the caller falls back to waiting for the
        outbox's commit)."""
        fd = self._fd
        if fd is None:
            return False
        line = payload + b"\n"
        try:
            written = os.write(fd, line)
        except OSError as exc:
            self._failed(exc)
            return False
        if written != len(line):  # a short write (disk full): this line is torn; replay skips it
            self._failed(OSError("short write"))
            with contextlib.suppress(OSError):
                os.write(fd, b"\n")  # end the torn line so the next one parses
            return False
        self._written += written
        return True

    def kept(self) -> None:
        """An event of the current segment never reached the outbox's buffer: keep the segment for
        the next start to read back."""
        self._keep = True

    def rotate_if_due(self) -> Completed | None:
        """Start the next segment when the current one is big or old enough; the completed one."""
        if self._fd is None or (self._written < self._segment_bytes
                                and self._clock() - self._opened_at < self._segment_age_s):
            return None
        completed = Completed(self._number, self._keep)
        os.close(self._fd)
        self._fd = None
        try:
            self._open_next()
        except OSError as exc:
            self._failed(exc)  # no journal until the next start: the outbox waits for its writer instead
        return completed

    # -- any thread --------------------------------------------------------------------------------

    def remove(self, number: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(number))

    @staticmethod
    def read(path: Path) -> Iterator[tuple[str, bytes]]:
        """(event id, payload) of each complete line; a torn or unreadable line is skipped, logged."""
        with path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                payload = line.rstrip(b"\n")
                if not payload:
                    continue
                try:
                    event_id = orjson.loads(payload)["id"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    log.warning("unreadable line in the usage journal skipped", extra={
                        "segment": path.name, "line": number})
                    continue
                yield str(event_id), payload

    # -- inside ------------------------------------------------------------------------------------

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:06d}{SUFFIX}"

    def _open_next(self) -> None:
        self._number += 1
        self._fd = os.open(self._path(self._number), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._written = 0
        self._opened_at = self._clock()
        self._keep = False

    def _failed(self, exc: OSError) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 1000 == 0:
            log.error("the usage journal refused a write: answers wait for the outbox instead", extra={
                "error": str(exc), "failures": self.failures})
