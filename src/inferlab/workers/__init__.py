"""``inferlab serve --workers N``: a supervisor that owns the managed engines, N gateway workers."""

from inferlab.workers.plan import multi_worker_problems, worker_settings
from inferlab.workers.supervisor import Supervisor

__all__ = ["Supervisor", "multi_worker_problems", "worker_settings"]
