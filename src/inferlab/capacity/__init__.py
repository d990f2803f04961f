"""Capacity planning from live data: demand forecast per model, measured replica throughput, a plan."""

from inferlab.capacity.history import DemandHistory, HourlyUsage, ModelHistory
from inferlab.capacity.planner import CapacityPlanner, ModelPlan, NotEnoughHistory, Pool, plan_model

__all__ = ["CapacityPlanner", "DemandHistory", "HourlyUsage", "ModelHistory", "ModelPlan", "NotEnoughHistory", "Pool",
           "plan_model"]
