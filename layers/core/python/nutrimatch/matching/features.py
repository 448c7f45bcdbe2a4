"""The per-product features matching scores: nutrient amounts per serving, quantised to levels.

Amounts per serving: a `per_100g` value is scaled by serving_size_g / 100; without a serving size it is scored
as a 100 g serving (and flagged). Added sugar falls back to total sugar when not given (added ≤ total, so the
fallback can only overstate it).

Levels: the score reads an amount through its level, a 1/8-octave bucket (≈ 9 % wide): level 0 is "none"
(below LEVEL_BASE times the feature's unit), levels 1..TOP_LEVEL grow geometrically, UNKNOWN_LEVEL is a
missing value. Quantising makes the score a function of 9 small integers per product, which is what lets the
engine precompute, bound and prune (engine.py). Bucketing uses bisect on one float64 edge table, in numpy
(`searchsorted`) and in Python (`bisect`) alike, so both give the same level for the same amount.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

LEVELS = 128
TOP_LEVEL = 126
UNKNOWN_LEVEL = 127
STEPS_PER_OCTAVE = 8


@dataclass(frozen=True)
class Feature:
    name: str
    """Key of the amount in `amounts_per_serving` and the product column it comes from."""
    unit: float
    """Amount represented by level 1; level i stands for unit * 2 ** ((i - 1) / 8)."""
    label: str
    symbol: str

    def edges(self) -> tuple[float, ...]:
        """Lower bound of levels 1..TOP_LEVEL (edges halfway between representatives, on a log scale)."""
        return tuple(self.unit * 2.0 ** ((i - 1.5) / STEPS_PER_OCTAVE) for i in range(1, TOP_LEVEL + 1))

    def representative(self, level: int) -> float:
        """The amount a level is scored as (nan for an unknown amount)."""
        if level == UNKNOWN_LEVEL:
            return math.nan
        return 0.0 if level == 0 else self.unit * 2.0 ** ((level - 1) / STEPS_PER_OCTAVE)


FEATURES: tuple[Feature, ...] = (
    Feature("sodium_mg", 1.0, "Sodium", "mg"),
    Feature("added_sugar_g", 0.01, "Added sugar", "g"),
    Feature("sugar_g", 0.01, "Sugar", "g"),
    Feature("saturated_fat_g", 0.01, "Saturated fat", "g"),
    Feature("carbs_g", 0.01, "Carbohydrate", "g"),
    Feature("potassium_mg", 1.0, "Potassium", "mg"),
    Feature("calories", 1.0, "Energy", "kcal"),
    Feature("fiber_g", 0.01, "Fiber", "g"),
    Feature("protein_g", 0.01, "Protein", "g"),
)
FEATURE_INDEX = {feature.name: index for index, feature in enumerate(FEATURES)}
REPRESENTATIVES = tuple(np.array([f.representative(level) for level in range(LEVELS)]) for f in FEATURES)
_EDGES = tuple(feature.edges() for feature in FEATURES)
_EDGE_ARRAYS = tuple(np.array(edges, dtype=np.float64) for edges in _EDGES)

# Each feature is read from the product column of the same name (added sugar then falls back to sugar).
NUTRIENT_COLUMNS = tuple(f.name for f in FEATURES)


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value) if isinstance(value, Decimal | int | float) else math.nan


def serving_factor(nutrient_basis: str, serving_size_g: Any) -> float:
    """What a stored nutrient value is multiplied by to get the amount in one serving."""
    if nutrient_basis != "per_100g":
        return 1.0
    serving = _number(serving_size_g)
    return (100.0 if math.isnan(serving) else serving) / 100.0


def amounts_per_serving(product: dict[str, Any]) -> dict[str, float]:
    """Feature amounts of one product row (nan where unknown); the scalar twin of `amount_columns`."""
    factor = serving_factor(product["nutrient_basis"], product.get("serving_size_g"))
    amounts = {name: _number(product.get(name)) * factor for name in NUTRIENT_COLUMNS}
    if math.isnan(amounts["added_sugar_g"]):
        amounts["added_sugar_g"] = amounts["sugar_g"]
    return amounts


def amount_columns(raw: dict[str, npt.NDArray[np.float64]], per_100g: npt.NDArray[np.bool_],
                   serving_size_g: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(n, len(FEATURES)) amounts per serving from stored nutrient columns (nan = unknown)."""
    factor = np.where(per_100g, np.where(np.isnan(serving_size_g), 100.0, serving_size_g) / 100.0, 1.0)
    columns = {name: raw[name] * factor for name in NUTRIENT_COLUMNS}
    added = columns["added_sugar_g"]
    columns["added_sugar_g"] = np.where(np.isnan(added), columns["sugar_g"], added)
    return np.stack([columns[f.name] for f in FEATURES], axis=1)


def level_of(feature_index: int, amount: float) -> int:
    if math.isnan(amount):
        return UNKNOWN_LEVEL
    return bisect.bisect_right(_EDGES[feature_index], amount)


def levels_of(amounts: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """(n, F) levels of (n, F) amounts; the vectorised twin of `level_of`."""
    levels = np.empty(amounts.shape, dtype=np.uint8)
    for index, edges in enumerate(_EDGE_ARRAYS):
        column = amounts[:, index]
        bucket = np.searchsorted(edges, column, side="right")
        levels[:, index] = np.where(np.isnan(column), UNKNOWN_LEVEL, bucket)
    return levels
