"""The dashboards' Jinja2 environment: templates and static files shipped inside the package.

Autoescaping is on for every template (``select_autoescape`` would leave a non-``.html`` name
unescaped; here nothing is): a tenant, key or model name is user data and is always rendered as
text. Values that pages hand to the charts go through ``tojson``, which escapes ``<``, ``>``, ``&``
and quotes, inside an attribute.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

STATIC = Path(str(resources.files("inferlab.web") / "static"))
VENDORED = {"htmx.min.js": "htmx.org 2.0.11 (BSD Zero Clause)", "uPlot.iife.min.js": "uPlot 1.6.32 (MIT)",
            "uPlot.min.css": "uPlot 1.6.32 (MIT)"}


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _money(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"${Decimal(str(value)).quantize(Decimal('0.0001')):,}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("inferlab.web", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        enable_async=False,
    )
    env.filters.update(number=_number, money=_money, when=_when)
    return env


class Renderer:
    def __init__(self) -> None:
        self._env = environment()

    def render(self, template: str, context: dict[str, Any]) -> str:
        return self._env.get_template(template).render(context)
