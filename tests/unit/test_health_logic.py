"""Health profiles, energy and derived limits: worked numbers, strictest-wins combinations, validation."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from nutrimatch.errors import InvalidInput
from nutrimatch.health import (
    DerivedLimits,
    HealthProfile,
    basal_metabolic_rate,
    derive_limits,
    estimate_energy,
)
from nutrimatch.health.energy import total_daily_energy_expenditure
from nutrimatch.health.profile import ACTIVITY_LEVELS, CONDITIONS, SEXES, Condition
from nutrimatch.health.store import StoredProfile
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS

TODAY = date(2026, 3, 15)
CAPPED_NUTRIENTS = (
    "energy_kcal", "sodium_mg", "added_sugar_g", "total_sugar_g", "carbs_g", "saturated_fat_g", "potassium_mg",
    "protein_g",
)  # fmt: skip


def profile(**fields: Any) -> HealthProfile:
    base: dict[str, Any] = {"height_cm": 175, "weight_kg": 70, "age": 30, "sex": "male"}
    return HealthProfile.model_validate(base | fields)


def woman(**fields: Any) -> HealthProfile:
    return profile(**({"height_cm": 165, "weight_kg": 60, "age": 40, "sex": "female"} | fields))


def limits(p: HealthProfile) -> DerivedLimits:
    return derive_limits(p, today=TODAY)


def error_locations(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in excinfo.value.errors()]


# --- energy --------------------------------------------------------------------------------------------------


def test_mifflin_st_jeor_worked_examples() -> None:
    # 10·70 + 6.25·175 - 5·30 + 5 = 700 + 1093.75 - 150 + 5
    assert basal_metabolic_rate(weight_kg=70, height_cm=175, age_years=30, sex="male") == 1648.75
    # 600 + 1031.25 - 200 - 161
    assert basal_metabolic_rate(weight_kg=60, height_cm=165, age_years=40, sex="female") == 1270.25
    # unspecified: the mean of 1648.75 and 1482.75
    assert basal_metabolic_rate(weight_kg=70, height_cm=175, age_years=30, sex="unspecified") == 1565.75


@pytest.mark.parametrize(
    ("level", "tdee"),
    [("sedentary", 1978.5), ("light", 2267.03125), ("moderate", 2555.5625), ("active", 2844.09375),
     ("very_active", 3132.625)],
)  # fmt: skip
def test_activity_factors(level: Any, tdee: float) -> None:
    assert total_daily_energy_expenditure(1648.75, level) == pytest.approx(tdee)


def test_weight_loss_subtracts_500_kcal() -> None:
    energy = estimate_energy(profile(activity_level="moderate", conditions=["weight_loss"]), today=TODAY)
    assert energy.tdee_kcal == pytest.approx(2555.5625)
    assert energy.target_kcal == pytest.approx(2055.5625)
    assert "weight_loss" in energy.reasons


def test_weight_loss_stops_at_the_floor_for_women() -> None:
    # TDEE 1270.25 * 1.2 = 1524.3; minus 500 would be 1024.3, below the 1,200 kcal floor
    energy = estimate_energy(woman(conditions=["weight_loss"]), today=TODAY)
    assert energy.target_kcal == 1200


def test_weight_loss_floor_is_1500_for_men() -> None:
    # 10·55 + 6.25·160 - 5·70 + 5 = 1205; * 1.2 = 1446 < 1500: no deficit, and the floor lifts nothing
    energy = estimate_energy(
        profile(weight_kg=55, height_cm=160, age=70, activity_level="sedentary", conditions=["weight_loss"]),
        today=TODAY,
    )
    assert energy.target_kcal == pytest.approx(1446)


def test_weight_loss_floor_never_lifts_the_target_above_expenditure() -> None:
    # 450 + 937.5 - 400 - 161 = 826.5; * 1.2 = 991.8, below the 1,200 floor: eat what you burn, not more
    energy = estimate_energy(woman(weight_kg=45, height_cm=150, age=80, conditions=["weight_loss"]), today=TODAY)
    assert energy.target_kcal == pytest.approx(991.8)


def test_pregnancy_adds_340_kcal_and_cancels_the_weight_loss_deficit() -> None:
    # 600 + 1031.25 - 150 - 161 = 1320.25; * 1.375 = 1815.34375; + 340
    pregnant = woman(age=30, activity_level="light", conditions=["pregnancy"])
    assert estimate_energy(pregnant, today=TODAY).target_kcal == pytest.approx(2155.34375)
    also_dieting = woman(age=30, activity_level="light", conditions=["pregnancy", "weight_loss"])
    energy = estimate_energy(also_dieting, today=TODAY)
    assert energy.target_kcal == pytest.approx(2155.34375)
    assert "weight_loss ignored during pregnancy" in energy.reasons


def test_measures_giving_no_positive_resting_energy_are_refused() -> None:
    # each value is inside its range; together: 20 + 312.5 - 625 - 161 < 0
    impossible = woman(weight_kg=2, height_cm=50, age=125)
    with pytest.raises(InvalidInput, match="resting energy"):
        derive_limits(impossible, today=TODAY)


# --- limits: the default adult -------------------------------------------------------------------------------


def test_limits_of_a_moderately_active_30_year_old_man() -> None:
    result = limits(profile(activity_level="moderate"))
    assert result.age_years == 30
    assert result.bmr_kcal == 1648.8
    assert result.energy_kcal.day_max == 2555.6
    assert result.energy_kcal.meal_max == 766.7  # 30 % of the day
    assert (result.sodium_mg.day_max, result.sodium_mg.meal_max) == (2300, 690)
    assert result.added_sugar_g.day_max == 36
    assert result.added_sugar_g.reasons == ["sex male"]
    assert result.total_sugar_g.day_max == 115.0  # 18 % * 2555.5625 / 4
    assert result.carbs_g.day_max == 415.3  # 65 % * 2555.5625 / 4
    assert result.saturated_fat_g.day_max == 28.4  # 10 % * 2555.5625 / 9
    assert result.protein_g.day_min == 56.0  # 0.8 * 70
    assert result.protein_g.day_max is None
    assert result.fiber_g.day_min == 35.8  # 14 * 2.5555625
    assert result.fiber_g.meal_min == 10.7
    assert result.potassium_mg is None
    assert result.effective_avoid_allergens == frozenset()
    assert result.effective_required_diet_tags == frozenset()
    assert "Dietary Guidelines 2020-2025: fiber 14 g per 1,000 kcal" in result.fiber_g.sources


def test_added_sugar_for_women_and_unspecified_sex_is_25_g() -> None:
    assert limits(woman()).added_sugar_g.day_max == 25
    unspecified = limits(profile(sex="unspecified")).added_sugar_g
    assert unspecified.day_max == 25
    assert unspecified.reasons == ["sex unspecified"]


@pytest.mark.parametrize(("age", "cap", "reason"), [(15, 25, "age under 18"), (1, 0, "age under 2")])
def test_added_sugar_for_children(age: int, cap: float, reason: str) -> None:
    child = limits(profile(age=age, height_cm=170 if age > 10 else 75, weight_kg=60 if age > 10 else 10))
    assert child.added_sugar_g.day_max == cap
    assert child.added_sugar_g.reasons == [reason]


# --- limits: conditions, strictest wins ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "cap"), [(1, 1200), (3, 1200), (4, 1500), (8, 1500), (9, 1800), (13, 1800), (14, 2300)]
)
def test_children_get_the_dietary_guidelines_sodium_limit_of_their_age(age: int, cap: float) -> None:
    sodium = limits(profile(age=age, height_cm=150 if age > 8 else 100, weight_kg=40 if age > 8 else 16)).sodium_mg
    assert sodium.day_max == cap
    assert (sodium.reasons == ["default"]) == (age >= 14)


@pytest.mark.parametrize("condition", ["hypertension", "heart_disease", "chronic_kidney_disease"])
def test_sodium_1500_for_each_cardiorenal_condition(condition: Condition) -> None:
    sodium = limits(profile(conditions=[condition])).sodium_mg
    assert (sodium.day_max, sodium.meal_max) == (1500, 450)
    assert sodium.reasons == [condition]


def test_tied_rules_all_name_themselves() -> None:
    sodium = limits(profile(conditions=["hypertension", "chronic_kidney_disease"])).sodium_mg
    assert sodium.day_max == 1500
    assert sodium.reasons == ["chronic_kidney_disease", "hypertension"]
    assert "AHA: sodium ≤ 1,500 mg/day (ideal limit) for hypertension" in sodium.sources
    assert len(sodium.sources) == 2


def test_diabetes_tightens_added_sugar_and_carbohydrate() -> None:
    # energy 1270.25 * 1.375 = 1746.59375 kcal
    result = limits(woman(activity_level="light", conditions=["diabetes_type_2"]))
    assert result.added_sugar_g.day_max == 21.8  # 5 % * 1746.59375 / 4 = 21.83 < AHA 25
    assert result.added_sugar_g.reasons == ["diabetes_type_2"]
    assert result.carbs_g.day_max == 196.5  # 45 % * 1746.59375 / 4
    both = limits(woman(activity_level="light", conditions=["diabetes_type_2", "prediabetes"]))
    assert both.carbs_g.reasons == ["diabetes_type_2", "prediabetes"]


def test_strictest_rule_wins_even_against_the_condition_rule() -> None:
    # a very active man: 1000 + 1187.5 - 125 + 5 = 2067.5; * 1.9 = 3928.25 kcal; 5 % / 4 = 49.1 g > AHA 36 g
    athlete = profile(weight_kg=100, height_cm=190, age=25, activity_level="very_active", conditions=["prediabetes"])
    added_sugar = limits(athlete).added_sugar_g
    assert added_sugar.day_max == 36
    assert added_sugar.reasons == ["sex male"]


def test_heart_disease_and_high_cholesterol_cap_saturated_fat_at_6_percent() -> None:
    result = limits(profile(activity_level="moderate", conditions=["heart_disease", "high_cholesterol"]))
    assert result.saturated_fat_g.day_max == 17.0  # 6 % * 2555.5625 / 9 = 17.04
    assert result.saturated_fat_g.reasons == ["heart_disease", "high_cholesterol"]


def test_chronic_kidney_disease_caps_potassium_and_protein() -> None:
    result = limits(profile(conditions=["chronic_kidney_disease"]))
    assert result.potassium_mg is not None
    assert (result.potassium_mg.day_max, result.potassium_mg.meal_max) == (2000, 600)
    assert (result.protein_g.day_min, result.protein_g.day_max) == (56, 56)


def test_pregnancy_adds_25_g_protein() -> None:
    assert limits(woman(conditions=["pregnancy"])).protein_g.day_min == 73  # 0.8 * 60 + 25


def test_a_cap_outranks_a_conflicting_minimum() -> None:
    protein = limits(woman(conditions=["pregnancy", "chronic_kidney_disease"])).protein_g
    assert (protein.day_min, protein.day_max) == (48, 48)
    assert "minimum lowered to the maximum: a protective cap outranks a target" in protein.reasons


def test_weight_loss_shrinks_every_energy_share() -> None:
    dieting = limits(profile(activity_level="moderate", conditions=["weight_loss"]))
    assert dieting.energy_kcal.day_max == 2055.6
    assert dieting.saturated_fat_g.day_max == 22.8  # 10 % * 2055.5625 / 9, down from 28.4
    assert dieting.fiber_g.day_min == 28.8  # 14 * 2.0555625


# --- hard constraints ----------------------------------------------------------------------------------------


def test_celiac_disease_adds_gluten_free_and_avoids_wheat_and_gluten() -> None:
    result = limits(profile(conditions=["celiac_disease"], avoid_allergens=["dairy"], diet_goals=["vegan"]))
    assert result.effective_avoid_allergens == {"milk", "gluten", "wheat"}
    assert result.effective_required_diet_tags == {"vegan", "gluten_free"}
    assert result.hard_constraint_reasons[0].startswith("celiac_disease: avoid gluten, wheat; require gluten_free")


def test_avoiding_gluten_means_avoiding_wheat() -> None:
    result = limits(profile(avoid_allergens="gluten"))
    assert result.effective_avoid_allergens == {"gluten", "wheat"}
    assert result.hard_constraint_reasons == ["avoid wheat: it always contains gluten"]


# --- profile validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"age": 400}, ("age",)),
        ({"age": 0}, ("age",)),
        ({"age": True}, ("age",)),
        ({"age": "forty"}, ("age",)),
        ({"height_cm": 3}, ("height_cm",)),
        ({"height_cm": 300}, ("height_cm",)),
        ({"height_cm": float("nan")}, ("height_cm",)),
        ({"weight_kg": 1}, ("weight_kg",)),
        ({"weight_kg": 700}, ("weight_kg",)),
        ({"sex": "other"}, ("sex",)),
        ({"activity_level": "couch"}, ("activity_level",)),
        ({"notes": "x" * 2001}, ("notes",)),
        ({"blood_type": "O+"}, ("blood_type",)),
    ],
)
def test_invalid_values_name_their_field(fields: dict[str, Any], location: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as excinfo:
        profile(**fields)
    assert error_locations(excinfo) == [location]


def test_unknown_condition_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        profile(conditions=["hypertension", "flu"])
    assert [loc[0] for loc in error_locations(excinfo)] == ["conditions"]


def test_unknown_allergen_error_names_the_value() -> None:
    with pytest.raises(ValidationError) as excinfo:
        profile(avoid_allergens=["milk", "unicorn dust"])
    (error,) = excinfo.value.errors()
    assert error["loc"] == ("avoid_allergens",)
    assert error["type"] == "unknown_allergen"
    assert "'unicorn dust'" in error["msg"]


def test_unknown_diet_goal_error_names_the_value() -> None:
    with pytest.raises(ValidationError) as excinfo:
        profile(diet_goals="vegan, carnivore")
    (error,) = excinfo.value.errors()
    assert (error["loc"], error["type"]) == (("diet_goals",), "unknown_diet_tag")
    assert "'carnivore'" in error["msg"]


def test_synonyms_are_normalised_to_codes() -> None:
    p = profile(avoid_allergens=["Dairy", "peanut", "Shrimp"], diet_goals="Gluten-Free; plant-based")
    assert p.avoid_allergens == {"milk", "peanuts", "crustacean_shellfish"}
    assert p.diet_goals == {"gluten_free", "plant_based"}


def test_allergens_of_the_wrong_shape_get_the_standard_type_error() -> None:
    with pytest.raises(ValidationError) as excinfo:
        profile(avoid_allergens=[1, 2])
    assert {loc[0] for loc in error_locations(excinfo)} == {"avoid_allergens"}


@pytest.mark.parametrize(
    "fields",
    [{"age": None}, {"birth_date": date(1990, 1, 1)}],
    ids=["neither", "both"],
)
def test_exactly_one_of_age_and_birth_date(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of age and birth_date"):
        profile(**fields)


@pytest.mark.parametrize(
    ("birth_date", "today", "age"),
    [
        (date(1996, 3, 15), date(2026, 3, 14), 29),
        (date(1996, 3, 15), date(2026, 3, 15), 30),
        (date(2000, 2, 29), date(2025, 2, 28), 24),
        (date(2000, 2, 29), date(2025, 3, 1), 25),
    ],
)
def test_age_from_birth_date_counts_completed_years(birth_date: date, today: date, age: int) -> None:
    p = profile(age=None, birth_date=birth_date)
    assert p.age_on(today) == age
    assert derive_limits(p, today=today).age_years == age


def test_birth_date_is_checked_against_today_from_the_validation_context() -> None:
    data = {"height_cm": 170, "weight_kg": 70, "birth_date": "2030-01-01"}
    with pytest.raises(ValidationError) as excinfo:
        HealthProfile.model_validate(data, context={"today": TODAY})
    assert error_locations(excinfo) == [("birth_date",)]
    assert "must be in the past" in str(excinfo.value)
    with pytest.raises(ValidationError, match="age of 0"):
        HealthProfile.model_validate(data | {"birth_date": "2025-12-01"}, context={"today": TODAY})


def test_without_a_context_an_impossible_birth_date_fails_when_limits_are_derived() -> None:
    p = profile(age=None, birth_date=date(2030, 1, 1))  # no clock is read while validating
    with pytest.raises(InvalidInput) as excinfo:
        derive_limits(p, today=TODAY)
    assert excinfo.value.details == {"field": "birth_date"}


# --- serialisation -------------------------------------------------------------------------------------------


def test_profile_json_lists_sets_in_sorted_order() -> None:
    p = profile(conditions=["weight_loss", "celiac_disease"], avoid_allergens="soy, milk")
    data = json.loads(p.model_dump_json())
    assert data["conditions"] == ["celiac_disease", "weight_loss"]
    assert data["avoid_allergens"] == ["milk", "soybeans"]
    assert HealthProfile.model_validate_json(p.model_dump_json()) == p


def test_profiles_are_immutable() -> None:
    with pytest.raises(ValidationError):
        profile().weight_kg = 80


# --- properties ----------------------------------------------------------------------------------------------

adults = st.builds(
    HealthProfile,
    height_cm=st.floats(140, 210),
    weight_kg=st.floats(35, 200),
    age=st.integers(18, 90),
    sex=st.sampled_from(SEXES),
    activity_level=st.sampled_from(ACTIVITY_LEVELS),
    conditions=st.frozensets(st.sampled_from(CONDITIONS)),
    avoid_allergens=st.frozensets(st.sampled_from(sorted(ALLERGENS))),
    diet_goals=st.frozensets(st.sampled_from(sorted(DIET_TAGS))),
)


def _cap(result: DerivedLimits, nutrient: str, field: str) -> float:
    budget = getattr(result, nutrient)
    value = None if budget is None else getattr(budget, field)
    return math.inf if value is None else float(value)


@given(adults, st.sampled_from([c for c in CONDITIONS if c != "pregnancy"]))
def test_adding_a_condition_never_loosens_any_limit(p: HealthProfile, extra: Condition) -> None:
    # Pregnancy is the one deliberate exception: it raises the energy target and every share of it.
    before = limits(p)
    after = limits(p.model_copy(update={"conditions": p.conditions | {extra}}))
    for nutrient in CAPPED_NUTRIENTS:
        for field in ("day_max", "meal_max"):
            assert _cap(after, nutrient, field) <= _cap(before, nutrient, field), (nutrient, field)
    assert after.effective_avoid_allergens >= before.effective_avoid_allergens
    assert after.effective_required_diet_tags >= before.effective_required_diet_tags


@given(adults)
def test_every_budget_is_consistent_cited_and_json_round_trips(p: HealthProfile) -> None:
    result = limits(p)
    for name, budget in result.budgets().items():
        assert budget.reasons, name
        assert budget.sources, name
        if budget.day_min is not None and budget.day_max is not None:
            assert budget.day_min <= budget.day_max
        for day, meal in ((budget.day_min, budget.meal_min), (budget.day_max, budget.meal_max)):
            assert (day is None) == (meal is None)
            if day is not None and meal is not None:
                assert meal == pytest.approx(day * 0.30, abs=0.1)
    assert result.effective_avoid_allergens >= p.avoid_allergens
    assert result.effective_required_diet_tags >= p.diet_goals
    assert DerivedLimits.model_validate_json(result.model_dump_json()) == result


@given(
    weight=st.floats(2, 600),
    more=st.floats(0.01, 50),
    height=st.floats(50, 272),
    age=st.integers(1, 125),
    sex=st.sampled_from(SEXES),
)
def test_bmr_increases_with_weight(weight: float, more: float, height: float, age: int, sex: Any) -> None:
    lighter = basal_metabolic_rate(weight_kg=weight, height_cm=height, age_years=age, sex=sex)
    heavier = basal_metabolic_rate(weight_kg=weight + more, height_cm=height, age_years=age, sex=sex)
    assert heavier > lighter


@given(adults)
def test_energy_target_stays_within_expenditure_unless_pregnant(p: HealthProfile) -> None:
    energy = estimate_energy(p, today=TODAY)
    if "pregnancy" in p.conditions:
        assert energy.target_kcal == pytest.approx(energy.tdee_kcal + 340)
    else:
        assert energy.target_kcal <= energy.tdee_kcal
        assert energy.target_kcal >= min(energy.tdee_kcal, 1200)


def test_limits_follow_a_birth_date_past_the_birthday_after_they_were_stored() -> None:
    teenager = profile(age=None, birth_date=date(2008, 3, 20), height_cm=170, weight_kg=60)
    stored = StoredProfile(customer_id=uuid.uuid4(), version=1, profile=teenager, limits=limits(teenager),
                           updated_at=datetime(2026, 3, 15, tzinfo=UTC))
    assert stored.limits_on(TODAY) is stored.limits
    assert stored.limits.added_sugar_g.reasons == ["age under 18"]
    adult = stored.limits_on(date(2026, 3, 20))
    assert adult.age_years == 18 and adult.added_sugar_g.reasons != ["age under 18"]
    with_age = StoredProfile(customer_id=uuid.uuid4(), version=1, profile=profile(age=17), limits=limits(
        profile(age=17)), updated_at=datetime(2026, 3, 15, tzinfo=UTC))
    assert with_age.limits_on(date(2030, 1, 1)) is with_age.limits  # an age given as such stays as given
