"""The health score: every condition weighs in, amounts per serving, levels, reasons with numbers."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nutrimatch.health import HealthProfile, derive_limits
from nutrimatch.matching.features import (
    FEATURE_INDEX,
    FEATURES,
    UNKNOWN_LEVEL,
    amounts_per_serving,
    level_of,
    levels_of,
)
from nutrimatch.matching.scoring import ScoringPlan, plan_for

TODAY = date(2026, 11, 1)


def plan_of(**profile: object) -> ScoringPlan:
    person = HealthProfile.model_validate({"height_cm": 170, "weight_kg": 75, "age": 50, **profile})
    return plan_for(person.conditions, derive_limits(person, today=TODAY))


def weights(plan: ScoringPlan) -> dict[tuple[str, str], int]:
    return {(c.feature, c.kind): c.weight for c in plan.components}


def test_every_condition_weighs_in_not_just_one():
    healthy = weights(plan_of())
    several = weights(plan_of(conditions=["diabetes_type_2", "hypertension", "chronic_kidney_disease",
                                          "weight_loss"]))
    assert healthy[("sodium_mg", "cap")] == healthy[("added_sugar_g", "cap")] == healthy[("carbs_g", "cap")] == 1
    assert ("potassium_mg", "cap") not in healthy and ("protein_g", "cap") not in healthy
    # Diabetes, hypertension, kidney disease and weight loss all shape the same person's score.
    assert several[("sodium_mg", "cap")] == several[("added_sugar_g", "cap")] == several[("carbs_g", "cap")] == 3
    assert several[("potassium_mg", "cap")] == several[("protein_g", "cap")] == several[("calories", "cap")] == 3


def test_budgets_are_the_persons_meal_budgets():
    hypertensive = plan_of(conditions=["hypertension"])
    sodium = next(c for c in hypertensive.components if c.feature == "sodium_mg")
    assert (sodium.target, sodium.why) == (450.0, "hypertension")  # 30 % of the AHA 1,500 mg/day
    assert next(c for c in plan_of().components if c.feature == "sodium_mg").target == 690.0


def test_reasons_name_the_claim_and_the_numbers():
    plan = plan_of(conditions=["hypertension"])
    amounts = {f.name: math.nan for f in FEATURES} | {"sodium_mg": 120.0, "fiber_g": 6.0, "sugar_g": 30.0}
    reasons = plan.reasons([amounts])[0]
    assert "Low sodium: 120 mg per serving ≤ 140 mg (27% of the 450 mg meal budget for hypertension)" in reasons
    assert "High fiber: 6 g per serving ≥ 5.6 g" in reasons
    assert "Sugar over the 24 g meal budget: 30 g per serving (125%)" in reasons
    assert "Saturated fat not declared: scored as neither a fit nor a miss" in reasons
    assert len(reasons) == len(plan.components)


def test_a_free_claim_needs_less_than_its_bound_and_a_low_claim_at_most_its_bound():
    sodium = next(c for c in plan_of().components if c.feature == "sodium_mg")
    assert sodium.reason(4.0).startswith("Sodium free: 4 mg per serving < 5 mg")
    assert sodium.reason(5.0).startswith("Very low sodium: 5 mg per serving ≤ 35 mg")
    assert sodium.reason(140.0).startswith("Low sodium: 140 mg per serving ≤ 140 mg")
    calories = next(c for c in plan_of().components if c.feature == "calories")
    assert calories.reason(5.0).startswith("Low calorie: 5 kcal per serving ≤ 40 kcal")


def test_amounts_per_100g_are_scaled_to_the_serving():
    product = {"nutrient_basis": "per_100g", "serving_size_g": 30, "sodium_mg": 500, "sugar_g": 10}
    amounts = amounts_per_serving(product)
    assert amounts["sodium_mg"] == 150 and amounts["sugar_g"] == 3
    assert amounts["added_sugar_g"] == 3  # not given: total sugar stands in (added ≤ total)
    unknown_serving = amounts_per_serving({**product, "serving_size_g": None})
    assert unknown_serving["sodium_mg"] == 500 and math.isnan(unknown_serving["fiber_g"])


@given(st.lists(st.one_of(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.just(math.nan),
                          st.sampled_from([0.0, 1.0, 0.01, 140.0])), min_size=1, max_size=50))
def test_levels_agree_in_python_and_numpy(values):
    """The engine buckets amounts with numpy, the oracle and reasons with bisect: they must agree exactly."""
    edges = [edge for feature in FEATURES for edge in feature.edges()[:3]]
    values = values + edges + [np.nextafter(edge, 0) for edge in edges]
    amounts = np.array([[value] * len(FEATURES) for value in values], dtype=np.float64)
    vectorised = levels_of(amounts)
    for row, value in enumerate(values):
        for index in range(len(FEATURES)):
            assert vectorised[row, index] == level_of(index, value)
    assert level_of(0, math.nan) == UNKNOWN_LEVEL


@given(st.floats(min_value=0, max_value=5000), st.floats(min_value=0, max_value=5000))
def test_less_of_a_capped_nutrient_never_scores_lower(low, high):
    plan = plan_of(conditions=["hypertension", "diabetes_type_1"])
    low, high = sorted((low, high))
    for name in ("sodium_mg", "added_sugar_g", "saturated_fat_g"):
        base = {f.name: 1.0 for f in FEATURES}
        assert plan.score(base | {name: low}) >= plan.score(base | {name: high})
    fiber = FEATURE_INDEX["fiber_g"]
    assert plan.table[fiber, level_of(fiber, high)] >= plan.table[fiber, level_of(fiber, low)]
