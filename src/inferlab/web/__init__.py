"""The dashboards InferLab serves under ``/ui``: server-rendered Jinja2 pages with htmx and uPlot
(vendored in ``static/``, no build step), signed-in with an API key or JWT (``session``). The HTTP
side is ``inferlab.api.web_routes``; this package holds what is not HTTP: the sessions, the pages'
data (``pages``, from the services the API uses) and the templates."""

from inferlab.web.pages import AdminPages, PortalPages
from inferlab.web.session import Session, SessionSigner
from inferlab.web.sources import AnomalyFeed, AutoscalerDecisions, Sources

__all__ = ["AdminPages", "AnomalyFeed", "AutoscalerDecisions", "PortalPages", "Session", "SessionSigner", "Sources"]
