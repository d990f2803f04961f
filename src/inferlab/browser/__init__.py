"""The browser hybrid: small models run in the visitor's browser (``clients/browser``), InferLab
serves them, answers what the browser cannot, and keeps one usage ledger for both."""

from inferlab.browser.catalogue import BrowserCatalogue, BrowserModel
from inferlab.browser.memory import MemoryReportPacer, MemorySeenReports
from inferlab.browser.protocol import ReportPacer, SeenReports
from inferlab.browser.reports import LocalUsageReports
from inferlab.browser.step import ServerFallbackPolicy

__all__ = [
           "BrowserCatalogue",
           "BrowserModel",
           "LocalUsageReports",
           "MemoryReportPacer",
           "MemorySeenReports",
           "ReportPacer",
           "SeenReports",
           "ServerFallbackPolicy",
]
