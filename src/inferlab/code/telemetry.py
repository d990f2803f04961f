"""Accept/reject telemetry of code completions: which suggestion the editor showed, took or dropped,
counted per model and language (acceptance rate = accepted / (accepted + rejected)).

A completion id is known only to the tenant it was issued to (another tenant's id is unknown), an
event is counted once per completion and kind, and the log of issued ids is bounded (oldest out).
The counts also go to Prometheus (``inferlab_code_completion_events_total``) when metrics are on;
the routing classifier reads acceptance per language from here.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Protocol

from inferlab.errors import InvalidRequest, NotFound

EventKind = Literal["view", "accept", "reject"]
# editor clients' words for the same events (Tabby: view/select/dismiss)
KINDS: dict[str, EventKind] = {"view": "view", "shown": "view", "accept": "accept", "select": "accept",
                               "reject": "reject", "dismiss": "reject"}


class EventCounter(Protocol):
    def code_event(self, model: str, language: str, kind: str) -> None: ...


@dataclass(slots=True)
class Issued:
    tenant: str
    model: str
    language: str
    at: float
    seen: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Tally:
    issued: int = 0
    view: int = 0
    accept: int = 0
    reject: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        decided = self.accept + self.reject
        return self.accept / decided if decided else None


class CompletionTelemetry:
    def __init__(self, *, capacity: int = 100_000, counter: EventCounter | None = None) -> None:
        self._issued: OrderedDict[str, Issued] = OrderedDict()
        self._capacity = capacity
        self._counter = counter
        self._tallies: dict[tuple[str, str], Tally] = {}

    def issued(self, completion_id: str, *, tenant: str, model: str, language: str) -> None:
        self._issued[completion_id] = Issued(tenant, model, language, time.time())
        while len(self._issued) > self._capacity:
            self._issued.popitem(last=False)
        self._tallies.setdefault((model, language), Tally()).issued += 1

    def record(self, completion_id: str, kind: str, *, tenant: str) -> Issued:
        """Count one event; an unknown (or another tenant's) id is a 404, an unknown kind a 400."""
        event = KINDS.get(kind)
        if event is None:
            raise InvalidRequest(f"Invalid value for 'type': expected one of {', '.join(sorted(KINDS))}",
                                 param="type", code="invalid_value")
        issued = self._issued.get(completion_id)
        if issued is None or issued.tenant != tenant:
            raise NotFound(f"No completion '{completion_id}'", param="completion_id", code="completion_not_found")
        if event in issued.seen or (event != "view" and ({"accept", "reject"} & issued.seen)):
            return issued  # counted already: clients retry, and a completion is accepted or rejected once
        issued.seen.add(event)
        tally = self._tallies.setdefault((issued.model, issued.language), Tally())
        setattr(tally, event, getattr(tally, event) + 1)
        if self._counter is not None:
            self._counter.code_event(issued.model, issued.language, event)
        return issued

    def tally(self, model: str, language: str) -> Tally:
        return self._tallies.get((model, language), Tally())

    def acceptance(self, language: str) -> float | None:
        """Acceptance over every model for a language (the router's history feature)."""
        accept = sum(t.accept for (_, lang), t in self._tallies.items() if lang == language)
        reject = sum(t.reject for (_, lang), t in self._tallies.items() if lang == language)
        return accept / (accept + reject) if accept + reject else None

    def report(self) -> list[dict[str, object]]:
        return [{"model": m, "language": lang, "issued": t.issued, "views": t.view, "accepted": t.accept,
                 "rejected": t.reject, "acceptance_rate": t.acceptance_rate}
                for (m, lang), t in sorted(self._tallies.items())]
