"""``/admin/resources`` (per tenant and pool: guaranteed, held, borrowed, refused, utilisation,
scaling advice when guarantees exceed capacity) and ``/admin/reservations`` (time-boxed guarantees)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from inferlab.api.admin_routes import ONE, TenantId, _Body, _json, parse_body, path_id
from inferlab.api.auth import PRINCIPAL
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN, TENANT_ADMIN
from inferlab.errors import InvalidRequest, NotFound
from inferlab.resources.capacity import ReplicaCapacity
from inferlab.resources.model import Amount
from inferlab.resources.report import HardwareOption, scaling_advice
from inferlab.resources.reservations import Reservation
from inferlab.resources.service import ResourceService, usage_json


class ReservationIn(_Body):
    tenant_id: TenantId
    pool: str = Field(min_length=1, max_length=256)
    sequences: int = Field(0, ge=0)
    kv_tokens: int = Field(0, ge=0)
    start: datetime = Field(strict=False, description="ISO 8601 with a time zone")
    end: datetime = Field(strict=False)


def reservation_json(reservation: Reservation) -> dict[str, Any]:
    return {"object": "reservation", "id": reservation.id, "tenant_id": reservation.tenant, "pool": reservation.pool,
            "sequences": reservation.amount.sequences, "kv_tokens": reservation.amount.kv_tokens,
            "start": reservation.start.isoformat(), "end": reservation.end.isoformat()}


class ResourceRoutes:
    def __init__(self, service: ResourceService, max_body_bytes: int, per_replica: dict[str, ReplicaCapacity],
                 priced: Callable[[str], list[HardwareOption]] | None = None) -> None:
        self._service = service
        self._limit = max_body_bytes
        self._per_replica = per_replica
        self._priced = priced or (lambda pool: [])

    def routes(self) -> list[RouteSpec]:
        tags = ("resources",)
        return [
            RouteSpec("GET", "/admin/resources", self.report, TENANT_ADMIN,
                      "Per pool and tenant: guaranteed, held, borrowed, refused, utilisation (tenant admins: "
                      "their own tenant's rows)", tags),
            RouteSpec("GET", "/admin/reservations", self.list_reservations, PLATFORM_ADMIN,
                      "Reservations in force now or later", tags, params=(Param("pool", "only this pool"),)),
            RouteSpec("POST", "/admin/reservations", self.book, PLATFORM_ADMIN,
                      "Reserve a pool's capacity for a tenant from start to end (refused when it conflicts)", tags,
                      ReservationIn, status=201),
            RouteSpec("DELETE", "/admin/reservations/{reservation_id}", self.cancel, PLATFORM_ADMIN,
                      "Cancel a reservation", tags, status=204, errors=ONE),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def report(self, request: web.Request) -> web.Response:
        actor = request[PRINCIPAL]
        pools = []
        for pool, usage in (await self._service.usage()).items():
            shown = usage_json(usage, self._service.history)
            if actor.role != "platform-admin":
                shown["tenants"] = [t for t in shown["tenants"] if t["tenant"] == actor.tenant_id]
                shown.pop("utilisation")
            else:
                shown["scaling"] = self._advice(pool, usage.config.guaranteed)
            pools.append(shown)
        return _json({"object": "list", "data": pools})

    def _advice(self, pool: str, guaranteed: Amount) -> dict[str, Any] | None:
        capacity = self._service.capacities[pool]
        per_replica = self._per_replica.get(pool)
        options = [HardwareOption(f"one more replica like {pool}'s", per_replica)] if per_replica else []
        options += self._priced(pool)
        advice = scaling_advice(pool, guaranteed, capacity, options)
        if advice is None:
            return None
        return {"shortfall": {"sequences": advice.shortfall.sequences, "kv_tokens": advice.shortfall.kv_tokens},
                "options": [{"hardware": o.hardware.label, "replicas": o.replicas, "usd_per_hour": o.usd_per_hour,
                             "usd_per_month": o.usd_per_month} for o in advice.options]}

    async def list_reservations(self, request: web.Request) -> web.Response:
        pool = request.query.get("pool")
        pools = [pool] if pool is not None else self._service.pools
        found = []
        for name in pools:
            if name in self._service.capacities:
                found += await self._service.reservations.upcoming(name)
        return _json({"object": "list", "data": [reservation_json(r) for r in found]})

    async def book(self, request: web.Request) -> web.Response:
        body = await parse_body(request, ReservationIn, self._limit)
        if body.pool not in self._service.capacities:
            raise InvalidRequest(f"No allocated pool '{body.pool}'", code="unknown_pool", param="pool")
        reservation = await self._service.book(body.tenant_id, body.pool, Amount(body.sequences, body.kv_tokens),
                                               body.start, body.end)
        return _json(reservation_json(reservation), 201)

    async def cancel(self, request: web.Request) -> web.Response:
        if await self._service.cancel(path_id(request, "reservation_id", "reservation")) is None:
            raise NotFound("No such reservation")
        return web.Response(status=204)
