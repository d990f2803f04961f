"""Usage events for the metering tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from inferlab.metering import EventStatus, TokenSource, UsageEvent

_ids = itertools.count()


def usage_event(tenant: str = "acme", *, prompt: int = 10, completion: int = 5, price: str = "0.0000150000",
                event_id: str | None = None) -> UsageEvent:
    return UsageEvent(
        id=event_id or f"ev{next(_ids):010d}", time=datetime.now(UTC), tenant=tenant, user="u", key="k", tier="pro",
        route="/v1/chat/completions", model="m", model_version=None, replica="r0", hardware=None,
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0, token_source=TokenSource.ENGINE,
        queue_ms=0.0, ttft_ms=1.5, duration_ms=4.25, status=EventStatus.SUCCESS, http_status=200,
        price=Decimal(price), hardware_cost=Decimal(0), request_id="rq",
    )
