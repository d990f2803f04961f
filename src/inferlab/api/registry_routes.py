"""``/admin/registry``: the model registry's versions, aliases and experiments (platform admins),
and ``POST /v1/feedback``: a user's verdict on an answer of an experiment's variant (any caller).

Every change is written to the store and bumps its change counter; this gateway reloads at once,
the others at their next poll (``registry.poll_interval_s``).
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from inferlab.api.admin_routes import _Body, _json, parse_body
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.policy import INFERENCE, PLATFORM_ADMIN
from inferlab.errors import NotFound
from inferlab.registry.admin import RegistryAdmin

VERSION_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
TAGS = ("registry",)


class VersionIn(_Body):
    version: str = Field(pattern=VERSION_PATTERN)
    spec: dict[str, Any] = Field(description="the serving fields of a models: entry, without its name")
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")
    parameters: dict[str, Any] = Field(default_factory=dict)


class AliasIn(_Body):
    version: str = Field(pattern=VERSION_PATTERN)


class ExperimentIn(_Body):
    model: str = Field(min_length=1, max_length=200)
    candidate: str = Field(pattern=VERSION_PATTERN, description="a version or an alias")
    control: str | None = Field(None, pattern=VERSION_PATTERN, description="default: the stable alias")
    kind: Literal["canary", "ab"] = "canary"
    weight: float = Field(0.05, ge=0, le=1, description="the candidate's share of units")
    unit: Literal["tenant", "key", "user", "session"] | None = None
    salt: str | None = Field(None, min_length=1, max_length=64)


class WeightIn(_Body):
    weight: float = Field(ge=0, le=1)


class DecisionIn(_Body):
    action: Literal["promote", "rollback", "stop"]
    reason: str = Field("operator", max_length=500)


class FeedbackIn(_Body):
    experiment: str = Field(pattern=r"^exp_[0-9a-f]{16}$")
    variant: Literal["control", "candidate"]
    score: Literal[1, -1]


class RegistryRoutes:
    def __init__(self, admin: RegistryAdmin, max_body_bytes: int) -> None:
        self._admin = admin
        self._limit = max_body_bytes

    def routes(self) -> list[RouteSpec]:
        model = Param("model", "the model", "path")
        version = Param("version", "one of its versions", "path")
        alias = Param("alias", "an alias (stable, canary, ...)", "path")
        experiment = Param("experiment_id", "the experiment", "path")
        base = "/admin/registry"
        return [
            RouteSpec("GET", base, self.show, PLATFORM_ADMIN, "Every model's versions, aliases and experiments", TAGS),
            RouteSpec("POST", base + "/models/{model}/versions", self.add_version, PLATFORM_ADMIN,
                      "Register an immutable version (its engines start on every gateway once aliased)", TAGS,
                      VersionIn, status=201, params=(model,), errors=(409,)),
            RouteSpec("DELETE", base + "/models/{model}/versions/{version}", self.remove_version, PLATFORM_ADMIN,
                      "Remove a version no alias or running experiment uses", TAGS, params=(model, version),
                      errors=(404, 409)),
            RouteSpec("PUT", base + "/models/{model}/aliases/{alias}", self.set_alias, PLATFORM_ADMIN,
                      "Point an alias at a version", TAGS, AliasIn, params=(model, alias), errors=(404,)),
            RouteSpec("DELETE", base + "/models/{model}/aliases/{alias}", self.delete_alias, PLATFORM_ADMIN,
                      "Delete an alias (not stable)", TAGS, params=(model, alias), errors=(404,)),
            RouteSpec("POST", base + "/experiments", self.start, PLATFORM_ADMIN,
                      "Start an A/B test or canary between two versions of a model", TAGS, ExperimentIn,
                      status=201, errors=(404, 409)),
            RouteSpec("GET", base + "/experiments/{experiment_id}", self.experiment, PLATFORM_ADMIN,
                      "An experiment, its per-variant figures and its decision", TAGS, params=(experiment,),
                      errors=(404,)),
            RouteSpec("PATCH", base + "/experiments/{experiment_id}", self.weight, PLATFORM_ADMIN,
                      "Change the candidate's weight (raising it only moves units to the candidate)", TAGS,
                      WeightIn, params=(experiment,), errors=(404,)),
            RouteSpec("POST", base + "/experiments/{experiment_id}/decision", self.decide, PLATFORM_ADMIN,
                      "Promote, roll back or stop an experiment by hand", TAGS, DecisionIn, params=(experiment,),
                      errors=(404,)),
            RouteSpec("POST", "/v1/feedback", self.feedback, INFERENCE,
                      "A user's verdict (+1/-1) on an answer of an experiment's variant (see its x-inferlab-* headers)",
                      TAGS, FeedbackIn, errors=(404,)),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def show(self, request: web.Request) -> web.Response:
        return _json((await self._admin.state()).view())

    async def add_version(self, request: web.Request) -> web.Response:
        body = await parse_body(request, VersionIn, self._limit)
        created = await self._admin.add_version(request.match_info["model"], body.version, body.spec,
                                                digest=body.digest, parameters=body.parameters)
        return _json(created.view(), 201)

    async def remove_version(self, request: web.Request) -> web.Response:
        model, version = request.match_info["model"], request.match_info["version"]
        await self._admin.remove_version(model, version)
        return _json({"object": "model.version", "model": model, "version": version, "deleted": True})

    async def set_alias(self, request: web.Request) -> web.Response:
        body = await parse_body(request, AliasIn, self._limit)
        model, alias = request.match_info["model"], request.match_info["alias"]
        await self._admin.set_alias(model, alias, body.version)
        return _json({"object": "model.alias", "model": model, "alias": alias, "version": body.version})

    async def delete_alias(self, request: web.Request) -> web.Response:
        model, alias = request.match_info["model"], request.match_info["alias"]
        await self._admin.delete_alias(model, alias)
        return _json({"object": "model.alias", "model": model, "alias": alias, "deleted": True})

    async def start(self, request: web.Request) -> web.Response:
        body = await parse_body(request, ExperimentIn, self._limit)
        experiment = await self._admin.start_experiment(body.model, body.candidate, control=body.control,
                                                        kind=body.kind, weight=body.weight, unit=body.unit,
                                                        salt=body.salt)
        return _json(experiment.view(), 201)

    async def experiment(self, request: web.Request) -> web.Response:
        experiment_id = request.match_info["experiment_id"]
        found = (await self._admin.state()).experiments.get(experiment_id)
        if found is None:
            raise NotFound(f"no experiment {experiment_id!r}")
        return _json({**found.view(), "figures": await self._admin.figures(experiment_id)})

    async def weight(self, request: web.Request) -> web.Response:
        body = await parse_body(request, WeightIn, self._limit)
        await self._admin.set_weight(request.match_info["experiment_id"], body.weight)
        return await self.experiment(request)

    async def decide(self, request: web.Request) -> web.Response:
        body = await parse_body(request, DecisionIn, self._limit)
        await self._admin.end_experiment(request.match_info["experiment_id"], body.action, reason=body.reason)
        return await self.experiment(request)

    async def feedback(self, request: web.Request) -> web.Response:
        body = await parse_body(request, FeedbackIn, self._limit)
        await self._admin.feedback(body.experiment, body.variant, body.score > 0)
        return _json({"object": "feedback", "experiment": body.experiment, "variant": body.variant,
                      "score": body.score})
