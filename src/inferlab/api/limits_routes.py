"""``/admin/limits/{subject}/{subject_id}``: stored rate limits and quotas of a key, user or tenant.

``subject`` is ``key``, ``user`` or ``tenant``. ``PUT`` replaces every field (null: the configured
default applies); it needs a tenant admin, who grants nothing above their own effective limits
(``inferlab.ratelimit.grants``); every change is audited.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from inferlab.api.admin_routes import _actor, _Body, _json, parse_body, path_id
from inferlab.api.middleware import REQUEST_ID
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.policy import ADMIN_SELF, LIMIT_EDITOR, RouteRule
from inferlab.config.tenants import TierLimits
from inferlab.errors import NotFound
from inferlab.ratelimit.grants import LimitAdmin, Subject
from inferlab.ratelimit.policy import Overrides

SUBJECTS: tuple[Subject, ...] = ("key", "user", "tenant")


class LimitsIn(TierLimits):
    """The stored limits of a subject: the fields of a tier's limits, strictly typed."""

    model_config = _Body.model_config

    def overrides(self) -> Overrides:
        return Overrides(**self.model_dump())


def limits_json(subject: str, subject_id: str, limits: Overrides) -> dict[str, Any]:
    return {"object": "limits", "subject": subject, "subject_id": subject_id, **asdict(limits)}


class LimitRoutes:
    def __init__(self, admin: LimitAdmin, max_body_bytes: int) -> None:
        self._admin = admin
        self._limit = max_body_bytes

    def routes(self) -> list[RouteSpec]:
        path = "/admin/limits/{subject}/{subject_id}"
        params = (Param("subject", "whose limits", "path", {"enum": list(SUBJECTS)}),
                  Param("subject_id", "the key, user or tenant id", "path"))
        return [
            # any admin-scoped credential: LimitAdmin shows members their own limits only
            RouteSpec("GET", path, self.get, ADMIN_SELF, "Show the stored limits of a key, user or tenant",
                      ("limits",), params=params, errors=(404,)),
            RouteSpec("PUT", path, self.put, RouteRule("admin", LIMIT_EDITOR),
                      "Replace the stored limits (null: the configured default; at most your own)", ("limits",),
                      LimitsIn, params=params, errors=(404,)),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    def _target(self, request: web.Request) -> tuple[Subject, str]:
        subject = request.match_info["subject"]
        if subject not in SUBJECTS:
            raise NotFound("No such limits subject (key, user or tenant)")
        return subject, path_id(request, "subject_id", subject)

    async def get(self, request: web.Request) -> web.Response:
        subject, subject_id = self._target(request)
        return _json(limits_json(subject, subject_id, await self._admin.get(_actor(request), subject, subject_id)))

    async def put(self, request: web.Request) -> web.Response:
        subject, subject_id = self._target(request)
        body = await parse_body(request, LimitsIn, self._limit)
        limits = await self._admin.set(_actor(request), subject, subject_id, body.overrides(),
                                       request_id=request.get(REQUEST_ID))
        return _json(limits_json(subject, subject_id, limits))
