"""The health score: every condition's budgets at once, as integer points per nutrient, with reasons.

A scoring plan turns a person's derived limits (health.limits, which already combine all their conditions)
into components, one per nutrient rule:
  cap    (sodium, added sugar, sugar, saturated fat, carbohydrate, potassium in CKD, energy, protein in CKD):
         fit to the per-meal budget, r = amount / budget:  r ≤ 1 → 1 - r/2 (1 down to 0.5),
         1 < r ≤ 2 → 0.5 - 1.5 (r - 1) (down to -1), beyond → -1.  Unknown amount → 0.
  floor  (fiber, protein): min(1, amount / per-meal target). Unknown → 0.
Points = round(100 * weight * fit). Weights are 1 by default and rise to 2-3 for the nutrients a condition
is about (sodium for hypertension, heart disease and CKD; sugars and carbohydrate for diabetes; saturated
fat for heart disease and high cholesterol; potassium and a protein cap for CKD; energy for weight loss;
fiber for diabetes, heart disease and high cholesterol; protein for pregnancy), so someone with diabetes
and hypertension is scored on both.

A product's score is the sum over components of the points at the representative amount of its level
(features.py). Ties are broken by product id (ascending), so the top k is one well-defined list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt

from nutrimatch.health.limits import (
    CHOLESTEROL_CONDITIONS,
    DIABETIC_CONDITIONS,
    SODIUM_RESTRICTED_CONDITIONS,
    DerivedLimits,
    NutrientBudget,
)
from nutrimatch.matching.features import FEATURE_INDEX, FEATURES, LEVELS, REPRESENTATIVES, level_of
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS, allergens_contradicting

SCORING_VERSION = 2
"""Part of every cache key and snapshot name: bump it whenever levels, features or points change."""

Kind = Literal["cap", "floor"]

# FDA nutrient content claims (21 CFR 101.54-101.62), per serving, from the strictest: (bound, claim). A "free"
# claim needs less than its bound, a "low" one at most its bound.
_CAP_CLAIMS: dict[str, tuple[tuple[float, str], ...]] = {
    "sodium_mg": ((5.0, "Sodium free"), (35.0, "Very low sodium"), (140.0, "Low sodium")),
    "added_sugar_g": ((0.5, "No added sugar"),),
    "sugar_g": ((0.5, "Sugar free"),),
    "saturated_fat_g": ((0.5, "Saturated fat free"), (1.0, "Low saturated fat")),
    "calories": ((5.0, "Calorie free"), (40.0, "Low calorie")),
}
_STRICT_CLAIMS = frozenset({"Sodium free", "No added sugar", "Sugar free", "Saturated fat free", "Calorie free"})
# "High in" ≥ 20 % and "good source" ≥ 10 % of the FDA daily value (fiber 28 g, protein 50 g).
_FLOOR_CLAIMS: dict[str, tuple[tuple[float, str], ...]] = {
    "fiber_g": ((5.6, "High fiber"), (2.8, "Good source of fiber")),
    "protein_g": ((10.0, "High protein"), (5.0, "Good source of protein")),
}


@dataclass(frozen=True)
class Component:
    feature: str
    kind: Kind
    target: float
    """Per-meal budget (cap) or target (floor), in the feature's unit."""
    weight: int
    why: str
    """What set the weight: "general" or the conditions it is about."""

    def points(self, amounts: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Points for amounts per serving (nan = unknown scores 0)."""
        if self.kind == "floor":
            fit = np.minimum(1.0, amounts / self.target) if self.target > 0 else np.ones_like(amounts)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = amounts / self.target if self.target > 0 else np.where(amounts == 0, 0.0, np.inf)
            fit = np.where(ratio <= 1, 1 - ratio / 2, np.where(ratio <= 2, 0.5 - 1.5 * (ratio - 1), -1.0))
        return np.where(np.isnan(amounts), 0, np.round(100 * self.weight * fit)).astype(np.int64)

    def reason(self, amount: float) -> str:
        feature = FEATURES[FEATURE_INDEX[self.feature]]
        unit = feature.symbol
        if math.isnan(amount):
            return f"{feature.label} not declared: scored as neither a fit nor a miss"
        if self.kind == "floor":
            for bound, claim in _FLOOR_CLAIMS.get(self.feature, ()):
                if amount >= bound:
                    return f"{claim}: {_num(amount)} {unit} per serving ≥ {_num(bound)} {unit}"
            reached = 100 * amount / self.target if self.target > 0 else 100.0
            return (f"{feature.label}: {_num(amount)} {unit} per serving, {reached:.0f}% of the "
                    f"{_num(self.target)} {unit} meal target")
        budget = f"the {_num(self.target)} {unit} meal budget{self._about()}"
        share = f"{100 * amount / self.target:.0f}%" if self.target > 0 else "all"
        for bound, claim in _CAP_CLAIMS.get(self.feature, ()):
            strict = claim in _STRICT_CLAIMS
            if amount < bound or (amount == bound and not strict):
                relation = "<" if strict else "≤"
                return (f"{claim}: {_num(amount)} {unit} per serving {relation} {_num(bound)} {unit} "
                        f"({share} of {budget})")
        verdict = "within" if amount <= self.target else "over"
        return f"{feature.label} {verdict} {budget}: {_num(amount)} {unit} per serving ({share})"

    def _about(self) -> str:
        return "" if self.why == "general" else f" for {self.why}"


def _num(value: float) -> str:
    text = f"{value:,.1f}"
    return text[:-2] if text.endswith(".0") else text


def _spoken(conditions: Iterable[str]) -> str:
    return ", ".join(sorted(c.replace("_", " ") for c in conditions))


def _weighted(conditions: frozenset[str], relevant: frozenset[str], weight: int) -> tuple[int, str]:
    hit = conditions & relevant
    return (weight, _spoken(hit)) if hit else (1, "general")


@dataclass(frozen=True)
class ScoringPlan:
    components: tuple[Component, ...]
    avoid_allergens: frozenset[str]
    """The person's own (with what always contains them): products whose allergens are unknown are excluded too."""
    required_diet_tags: frozenset[str]

    @cached_property
    def contradicting_allergens(self) -> frozenset[str]:
        """Declared allergens that belie a required diet tag (vocabulary.DIET_TAG_CONTRADICTIONS)."""
        return allergens_contradicting(self.required_diet_tags)

    @cached_property
    def excluded_allergens(self) -> frozenset[str]:
        """No product declaring one of these is eligible."""
        return self.avoid_allergens | self.contradicting_allergens

    @property
    def avoid_mask(self) -> int:
        return ALLERGENS.bitmask(self.avoid_allergens)

    @property
    def exclude_mask(self) -> int:
        return ALLERGENS.bitmask(self.excluded_allergens)

    @property
    def require_mask(self) -> int:
        return DIET_TAGS.bitmask(self.required_diet_tags)

    @property
    def max_points(self) -> int:
        return sum(100 * c.weight for c in self.components)

    @cached_property
    def table(self) -> npt.NDArray[np.int32]:
        """(F, LEVELS) points of every level of every feature: a product's score is the sum of its lookups."""
        table = np.zeros((len(FEATURES), LEVELS), dtype=np.int32)
        for component in self.components:
            index = FEATURE_INDEX[component.feature]
            table[index] += component.points(REPRESENTATIVES[index]).astype(np.int32)
        return table

    def score(self, amounts: dict[str, float]) -> int:
        """A product's score from its amounts per serving, one level lookup per feature."""
        return sum(int(self.table[index, level_of(index, amounts[feature.name])])
                   for index, feature in enumerate(FEATURES))

    def reasons(self, products: list[dict[str, float]]) -> list[list[str]]:
        """Per product (its amounts per serving), one reason per component, the most influential first —
        from the exact, unquantised amounts."""
        impacts = [np.abs(c.points(np.array([amounts[c.feature] for amounts in products], dtype=np.float64)))
                   for c in self.components]
        return [[self.components[i].reason(amounts[self.components[i].feature])
                 for i in sorted(range(len(self.components)), key=lambda i: -impacts[i][row])]
                for row, amounts in enumerate(products)]


def _cap(feature: str, budget: NutrientBudget | None, weight_why: tuple[int, str]) -> list[Component]:
    if budget is None or budget.meal_max is None:
        return []
    return [Component(feature, "cap", budget.meal_max, *weight_why)]


def plan_for(conditions: frozenset[str], limits: DerivedLimits) -> ScoringPlan:
    """The scoring plan of a person: their derived limits, weighted by their conditions."""
    diabetic = _weighted(conditions, DIABETIC_CONDITIONS, 3)
    kidney = _weighted(conditions, frozenset({"chronic_kidney_disease"}), 3)
    losing_weight = "weight_loss" in conditions and "pregnancy" not in conditions  # as health.energy decides
    components = [
        *_cap("sodium_mg", limits.sodium_mg, _weighted(conditions, SODIUM_RESTRICTED_CONDITIONS, 3)),
        *_cap("added_sugar_g", limits.added_sugar_g, diabetic),
        *_cap("sugar_g", limits.total_sugar_g, _weighted(conditions, DIABETIC_CONDITIONS, 2)),
        *_cap("saturated_fat_g", limits.saturated_fat_g, _weighted(conditions, CHOLESTEROL_CONDITIONS, 3)),
        *_cap("carbs_g", limits.carbs_g, diabetic),
        *_cap("potassium_mg", limits.potassium_mg, kidney),
        *_cap("calories", limits.energy_kcal, (3, "weight loss") if losing_weight else (1, "general")),
        *_cap("protein_g", limits.protein_g, kidney),
    ]
    fiber_target = limits.fiber_g.meal_min
    if fiber_target is not None:
        fiber_weight = _weighted(conditions, DIABETIC_CONDITIONS | CHOLESTEROL_CONDITIONS, 2)
        components.append(Component("fiber_g", "floor", fiber_target, *fiber_weight))
    protein_target = limits.protein_g.meal_min
    if protein_target is not None:
        components.append(Component("protein_g", "floor", protein_target,
                                    *_weighted(conditions, frozenset({"pregnancy"}), 2)))
    return ScoringPlan(tuple(components), frozenset(limits.effective_avoid_allergens),
                       frozenset(limits.effective_required_diet_tags))

