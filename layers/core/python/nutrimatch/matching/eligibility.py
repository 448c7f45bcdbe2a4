"""The hard constraints on one product row, decided in plain Python.

The engine decides the same with bitmasks over a snapshot; this is the reference the oracle ranks with, and
the last check matching makes on the live rows it is about to return (so a product changed since the
snapshot was built is never served against a person's constraints).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nutrimatch.matching.engine import Filters
from nutrimatch.matching.scoring import ScoringPlan
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS


def is_eligible(product: dict[str, Any], plan: ScoringPlan, filters: Filters, allow_unknown_allergens: bool) -> bool:
    """Active, no avoided allergen (unknown allergens only if the person avoids none or the vendor accepts
    them), every required diet tag (implications included) and no declared allergen that belies one, and the
    request's category and price cap."""
    if product.get("status", "active") != "active":
        return False
    allergens = product.get("allergens")
    if allergens is None:
        if plan.avoid_allergens and not allow_unknown_allergens:
            return False
    elif ALLERGENS.implied_closure(a for a in allergens if a in ALLERGENS) & plan.excluded_allergens:
        return False
    tags = DIET_TAGS.implied_closure(t for t in product.get("dietary_tags") or () if t in DIET_TAGS)
    if not plan.required_diet_tags <= tags:
        return False
    if filters.category is not None and product.get("category") != filters.category:
        return False
    price = product.get("price")
    return filters.max_price is None or (price is not None and Decimal(str(price)) <= filters.max_price)
