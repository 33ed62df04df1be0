"""What the checker child runs now (config, plan, health model, desired table) and its
counters; a reload replaces the four together (runtime/check/reloader.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastha.check.desired import DesiredTable
from fastha.check.health import Health
from fastha.check.spec import Plan, build_plan


@dataclass(slots=True)
class Running:
    config: Any
    plan: Plan
    health: Health
    table: DesiredTable

    @classmethod
    def build(cls, config: Any) -> Running:
        """DesiredError: the config cannot be a table."""
        plan = build_plan(config)
        return cls(config, plan, Health(plan), DesiredTable(config))


@dataclass(slots=True)
class Counters:
    reconciles: int = 0
    ops: int = 0
    failed_ops: int = 0
    notifies: int = 0
    reloads: int = 0
    reload_failures: int = 0
    last_reload_ops: int = 0
    errors: list[str] = field(default_factory=list)
