"""Vendor plans and the API rate limits that come with them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Plan(StrEnum):
    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class RateLimit:
    per_second: int
    burst: int


PLAN_LIMITS: dict[Plan, RateLimit] = {
    Plan.STARTER: RateLimit(per_second=20, burst=40),
    Plan.GROWTH: RateLimit(per_second=100, burst=200),
    Plan.ENTERPRISE: RateLimit(per_second=500, burst=1000),
}
