"""Anomaly detection over the usage ledger: per model, replica (against its peers) and tenant."""

from inferlab.anomaly.detector import Detection, SeriesDetector, Tuning, peer_residuals
from inferlab.anomaly.incidents import Incident, IncidentTracker, Key, Subject
from inferlab.anomaly.service import AnomalyDetector, IncidentStore

__all__ = ["AnomalyDetector", "Detection", "Incident", "IncidentStore", "IncidentTracker", "Key", "SeriesDetector",
           "Subject", "Tuning", "peer_residuals"]
