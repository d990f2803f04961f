"""Local usage into the ledger: ``POST /v1/browser/usage`` hands each report here.

A report is paced per key (``ReportPacer``: 429 + Retry-After beyond), parsed and checked
(``report.py``), and turned into a ``UsageEvent`` marked local — ``token_source="client"``,
``replica="local:<engine>"``, ``hardware="browser"``, no price — that joins the server's own events
in the same outbox, shipper, store, rollups and reports.

Idempotent by the client's event id: the ledger's id is derived from the tenant and that id
(``local-`` + SHA-256), and the event's time is the report's ``created``, so a report sent twice
is one ledger line (the store skips an (id, time) it has). A repeat seen recently is answered
``duplicate`` at once (``SeenReports``), without touching the outbox.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from inferlab.browser.catalogue import BrowserCatalogue
from inferlab.browser.protocol import ReportPacer, SeenReports
from inferlab.browser.report import LocalUsage, parse_report
from inferlab.errors import RateLimited, ServiceUnavailable
from inferlab.metering.event import EventStatus, TokenSource, UsageEvent
from inferlab.metering.protocol import UsageRecorder
from inferlab.tenants.directory import TenantDirectory
from inferlab.types import Caller

ROUTE = "/v1/chat/completions"  # what ran locally: a chat completion
HARDWARE = "browser"
STATUS = {"success": EventStatus.SUCCESS, "error": EventStatus.ERROR, "disconnect": EventStatus.DISCONNECT}
HTTP_STATUS = {"success": 200, "error": 500, "disconnect": 499}


@dataclass(frozen=True, slots=True)
class Recorded:
    event_id: str
    duplicate: bool

    def as_json(self) -> dict[str, str]:
        return {"object": "browser.usage", "id": self.event_id, "status": "duplicate" if self.duplicate else "recorded"}


def ledger_id(tenant: str, client_id: str) -> str:
    """The ledger's id of a client's event: the same client id in two tenants is two events."""
    return "local-" + hashlib.sha256(f"{tenant}\0{client_id}".encode()).hexdigest()[:40]


def _subject(caller: Caller) -> str:
    return caller.key_id or caller.user_id or f"{caller.tenant_id}@{caller.address}"


class LocalUsageReports:
    def __init__(self, catalogue: BrowserCatalogue, recorder: UsageRecorder, tenants: TenantDirectory,
                 seen: SeenReports, pacer: ReportPacer, *, max_age_s: float, skew_s: float, ack_timeout_s: float,
                 forget: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._catalogue = catalogue
        self._recorder = recorder
        self._tenants = tenants
        self._seen = seen
        self._pacer = pacer
        self._forget = forget
        self._max_age_s = max_age_s
        self._skew_s = skew_s
        self._ack_timeout_s = ack_timeout_s
        self._clock = clock

    async def record(self, caller: Caller, body: object) -> Recorded:
        now = self._clock()
        wait = self._pacer.take(_subject(caller), now)
        if wait > 0:
            raise RateLimited("too many usage reports for this key", retry_after=wait, code="usage_reports_rate_limited")
        usage = parse_report(body, self._catalogue, now=now, max_age_s=self._max_age_s, skew_s=self._skew_s)
        event_id = ledger_id(caller.tenant_id, usage.id)
        if not self._seen.first_time(event_id, now):
            return Recorded(event_id, duplicate=True)
        tier = (await self._tenants.context(caller.tenant_id)).tier.name
        event = self.event(caller, tier, event_id, usage)
        if not await self._recorder.append_durably(event, self._ack_timeout_s):
            if self._forget is not None:
                self._forget(event_id)  # not known to be kept: the client's retry must be taken again
            raise ServiceUnavailable("the usage report could not be kept now; send it again", retry_after=1.0,
                                     code="usage_not_recorded")
        return Recorded(event_id, duplicate=False)

    @staticmethod
    def event(caller: Caller, tier: str, event_id: str, usage: LocalUsage) -> UsageEvent:
        return UsageEvent(
            id=event_id, time=datetime.fromtimestamp(usage.created, UTC), tenant=caller.tenant_id,
            user=caller.user_id, key=caller.key_id, tier=tier, route=ROUTE, model=usage.model.name,
            model_version=usage.model.sha256[:12], replica=f"local:{usage.engine}", hardware=HARDWARE,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cached_tokens=0,
            token_source=TokenSource.CLIENT, queue_ms=None, ttft_ms=usage.ttft_ms, duration_ms=usage.duration_ms,
            status=STATUS[usage.status], http_status=HTTP_STATUS[usage.status], request_id=usage.request_id)
