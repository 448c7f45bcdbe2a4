"""The brute-force reference: every product checked and scored one by one in plain Python, then sorted.

Tests and bench/match.py compare the engine with it. It shares only the definition of the score (the plan's
components and the level buckets) and reads product rows as stored (allergen and tag codes, nutrient basis,
serving size), so it checks the snapshot, the masks, the filters, the pruning and the tie-break.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from nutrimatch.matching.eligibility import is_eligible
from nutrimatch.matching.engine import Filters
from nutrimatch.matching.features import amounts_per_serving
from nutrimatch.matching.scoring import ScoringPlan


def top_k(products: Iterable[dict[str, Any]], plan: ScoringPlan, *, k: int, filters: Filters = Filters(),
          allow_unknown_allergens: bool = False) -> list[tuple[UUID, int]]:
    """(product id, score) of the k best eligible products: score descending, then id ascending."""
    scored = [(UUID(str(p["id"])), plan.score(amounts_per_serving(p)))
              for p in products if is_eligible(p, plan, filters, allow_unknown_allergens)]
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:k]


def eligible_count(products: Iterable[dict[str, Any]], plan: ScoringPlan, *, filters: Filters = Filters(),
                   allow_unknown_allergens: bool = False) -> int:
    return sum(1 for p in products if is_eligible(p, plan, filters, allow_unknown_allergens))
