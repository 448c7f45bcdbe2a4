"""Daily and per-meal nutrient budgets derived from a health profile, each with the rules that set it.

Meals: a day is 3 meals of 30 % each plus a snack of 10 %, so a meal's budget is MEAL_SHARE = 30 % of
every daily figure (minimums and maximums alike).

Combination: each nutrient collects the general rule and the rules of every condition the person has, and
the strictest wins: the lowest maximum, the highest minimum. `reasons` names what set the winning value
("default", a condition code, "sex female", "age under 18"); `sources` cites the rule. Tied rules are all
kept. Should a minimum exceed a maximum (pregnancy's extra protein against the CKD protein cap), the
maximum wins, since a cap protects and a minimum only aims; the minimum is lowered to it and a reason says
so. Adding a condition only adds rules, so no maximum ever rises, with one deliberate exception: pregnancy
raises the energy target and with it every limit set as a share of energy.

Templates (each budget's `sources` cites its rule):
  energy         TDEE, adjusted for pregnancy and weight loss (energy.py)
  sodium         ≤ 2,300 mg; hypertension, heart_disease, chronic_kidney_disease ≤ 1,500 mg (AHA ideal)
  added sugar    ≤ 10 % of energy; AHA ≤ 25 g women (also when sex is unspecified) / 36 g men; under 18
                 ≤ 25 g, under 2 none; diabetes_type_1/2 and prediabetes ≤ 5 % of energy (WHO)
  total sugar    ≤ 18 % of energy (EU reference intake: 90 g per 2,000 kcal)
  carbohydrate   ≤ 65 % of energy (AMDR upper bound); diabetes and prediabetes ≤ 45 % — a template, the
                 ADA sets no single ideal share and clinicians individualise it
  saturated fat  ≤ 10 % of energy; heart_disease, high_cholesterol ≤ 6 % (AHA)
  potassium      capped only in chronic_kidney_disease: ≤ 2,000 mg (renal diet template)
  protein        ≥ 0.8 g/kg (RDA); pregnancy ≥ 0.8 g/kg + 25 g; chronic_kidney_disease ≤ 0.8 g/kg
  fiber          ≥ 14 g per 1,000 kcal of the energy target

Hard constraints: the person's avoided allergens and diet goals, plus what conditions demand
(celiac_disease: avoid gluten and wheat, require gluten_free), plus every allergen implying an avoided one
(avoiding gluten means avoiding wheat). Matching never relaxes these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict

from nutrimatch.health.energy import estimate_energy
from nutrimatch.health.profile import CodeSet, Condition, HealthProfile, Sex
from nutrimatch.vocabulary import ALLERGENS

MEAL_SHARE = 0.30
KCAL_PER_G_CARBOHYDRATE = 4.0
KCAL_PER_G_FAT = 9.0

DIABETIC_CONDITIONS: frozenset[Condition] = frozenset({"diabetes_type_1", "diabetes_type_2", "prediabetes"})
SODIUM_RESTRICTED_CONDITIONS: frozenset[Condition] = frozenset(
    {"hypertension", "heart_disease", "chronic_kidney_disease"}
)
CHOLESTEROL_CONDITIONS: frozenset[Condition] = frozenset({"heart_disease", "high_cholesterol"})
AHA_ADDED_SUGAR_G: Mapping[Sex, float] = MappingProxyType({"female": 25.0, "male": 36.0, "unspecified": 25.0})

CONDITION_AVOIDED_ALLERGENS: Mapping[Condition, frozenset[str]] = MappingProxyType(
    {"celiac_disease": frozenset({"gluten", "wheat"})}
)
CONDITION_REQUIRED_DIET_TAGS: Mapping[Condition, frozenset[str]] = MappingProxyType(
    {"celiac_disease": frozenset({"gluten_free"})}
)
CONDITION_CONSTRAINT_SOURCES: Mapping[Condition, str] = MappingProxyType(
    {"celiac_disease": "ACG (2023) celiac disease guideline: strict lifelong gluten-free diet"}
)

Unit = Literal["kcal", "g", "mg"]


class NutrientBudget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: Unit
    day_min: float | None = None
    day_max: float | None = None
    meal_min: float | None = None
    meal_max: float | None = None
    reasons: list[str]
    sources: list[str]


class DerivedLimits(BaseModel):
    """What matching needs of a profile: budgets to score against and hard constraints to filter by."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    age_years: int
    meal_share: float
    bmr_kcal: float
    tdee_kcal: float
    energy_kcal: NutrientBudget
    sodium_mg: NutrientBudget
    added_sugar_g: NutrientBudget
    total_sugar_g: NutrientBudget
    carbs_g: NutrientBudget
    saturated_fat_g: NutrientBudget
    potassium_mg: NutrientBudget | None
    protein_g: NutrientBudget
    fiber_g: NutrientBudget
    effective_avoid_allergens: CodeSet
    effective_required_diet_tags: CodeSet
    hard_constraint_reasons: list[str]

    def budgets(self) -> dict[str, NutrientBudget]:
        """Every budget by nutrient name; potassium only where it is capped."""
        return {name: value for name, value in self if isinstance(value, NutrientBudget)}


@dataclass(frozen=True, slots=True)
class _Rule:
    value: float
    reason: str
    source: str


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _strictest(rules: Sequence[_Rule], pick: Callable[[Iterable[float]], float]) -> tuple[float | None, list[_Rule]]:
    if not rules:
        return None, []
    value = pick(rule.value for rule in rules)
    return value, [rule for rule in rules if math.isclose(rule.value, value)]


def _budget(unit: Unit, *, caps: Sequence[_Rule] = (), floors: Sequence[_Rule] = ()) -> NutrientBudget:
    day_max, cap_rules = _strictest(caps, min)
    day_min, floor_rules = _strictest(floors, max)
    reasons = [rule.reason for rule in (*cap_rules, *floor_rules)]
    if day_min is not None and day_max is not None and day_min > day_max:
        day_min = day_max
        reasons.append("minimum lowered to the maximum: a protective cap outranks a target")
    return NutrientBudget(
        unit=unit,
        day_min=_rounded(day_min),
        day_max=_rounded(day_max),
        meal_min=_rounded(None if day_min is None else day_min * MEAL_SHARE),
        meal_max=_rounded(None if day_max is None else day_max * MEAL_SHARE),
        reasons=list(dict.fromkeys(reasons)),
        sources=list(dict.fromkeys(rule.source for rule in (*cap_rules, *floor_rules))),
    )


def _spoken(condition: Condition) -> str:
    return condition.replace("_", " ")


# Dietary Guidelines 2020-2025 (Appendix 1, Chronic Disease Risk Reduction intakes): sodium below age 14.
_CHILD_SODIUM_MG = ((4, 1200, "1-3"), (9, 1500, "4-8"), (14, 1800, "9-13"))


def _sodium(conditions: frozenset[Condition], age_years: int) -> NutrientBudget:
    caps = [_Rule(2300, "default", "Dietary Guidelines 2020-2025 / AHA: sodium ≤ 2,300 mg/day")]
    child = next(((cap, ages) for below, cap, ages in _CHILD_SODIUM_MG if age_years < below), None)
    if child is not None:
        cap, ages = child
        caps.append(_Rule(cap, f"ages {ages}",
                          f"Dietary Guidelines 2020-2025: sodium ≤ {cap:,} mg/day for ages {ages}"))
    caps += [
        _Rule(1500, condition, f"AHA: sodium ≤ 1,500 mg/day (ideal limit) for {_spoken(condition)}")
        for condition in sorted(conditions & SODIUM_RESTRICTED_CONDITIONS)
    ]
    return _budget("mg", caps=caps)


def _added_sugar(profile: HealthProfile, age_years: int, energy_kcal: float) -> NutrientBudget:
    caps = [
        _Rule(
            0.10 * energy_kcal / KCAL_PER_G_CARBOHYDRATE,
            "default",
            "Dietary Guidelines 2020-2025: added sugars < 10 % of energy",
        )
    ]
    if age_years < 2:
        caps.append(_Rule(0, "age under 2", "Dietary Guidelines 2020-2025: no added sugars before age 2"))
    elif age_years < 18:
        caps.append(_Rule(25, "age under 18", "AHA (2016): added sugars ≤ 25 g/day for ages 2-18"))
    else:
        who = {"female": "women", "male": "men", "unspecified": "women, used when sex is unspecified"}
        caps.append(
            _Rule(
                AHA_ADDED_SUGAR_G[profile.sex],
                f"sex {profile.sex}",
                f"AHA: added sugars ≤ {AHA_ADDED_SUGAR_G[profile.sex]:g} g/day ({who[profile.sex]})",
            )
        )
    caps += [
        _Rule(
            0.05 * energy_kcal / KCAL_PER_G_CARBOHYDRATE,
            condition,
            f"WHO (2015) sugars guideline: free sugars < 5 % of energy, applied for {_spoken(condition)}",
        )
        for condition in sorted(profile.conditions & DIABETIC_CONDITIONS)
    ]
    return _budget("g", caps=caps)


def _total_sugar(energy_kcal: float) -> NutrientBudget:
    rule = _Rule(
        0.18 * energy_kcal / KCAL_PER_G_CARBOHYDRATE,
        "default",
        "EU Regulation 1169/2011 reference intake: total sugars 90 g per 2,000 kcal (18 % of energy)",
    )
    return _budget("g", caps=[rule])


def _carbohydrate(conditions: frozenset[Condition], energy_kcal: float) -> NutrientBudget:
    caps = [
        _Rule(
            0.65 * energy_kcal / KCAL_PER_G_CARBOHYDRATE,
            "default",
            "Dietary Guidelines 2020-2025 AMDR: carbohydrate 45-65 % of energy (upper bound)",
        )
    ]
    caps += [
        _Rule(
            0.45 * energy_kcal / KCAL_PER_G_CARBOHYDRATE,
            condition,
            f"Template: carbohydrate ≤ 45 % of energy for {_spoken(condition)} "
            "(ADA Standards of Care: no single ideal share; individualise)",
        )
        for condition in sorted(conditions & DIABETIC_CONDITIONS)
    ]
    return _budget("g", caps=caps)


def _saturated_fat(conditions: frozenset[Condition], energy_kcal: float) -> NutrientBudget:
    caps = [
        _Rule(
            0.10 * energy_kcal / KCAL_PER_G_FAT,
            "default",
            "Dietary Guidelines 2020-2025: saturated fat < 10 % of energy",
        )
    ]
    caps += [
        _Rule(
            0.06 * energy_kcal / KCAL_PER_G_FAT,
            condition,
            f"AHA: saturated fat ≤ 6 % of energy for {_spoken(condition)}",
        )
        for condition in sorted(conditions & CHOLESTEROL_CONDITIONS)
    ]
    return _budget("g", caps=caps)


def _potassium(conditions: frozenset[Condition]) -> NutrientBudget | None:
    if "chronic_kidney_disease" not in conditions:
        return None  # potassium is only restricted when the kidneys cannot clear it
    rule = _Rule(
        2000,
        "chronic_kidney_disease",
        "NKF/KDOQI renal diet template: potassium ≤ 2,000 mg/day in chronic kidney disease "
        "(individualise with serum potassium)",
    )
    return _budget("mg", caps=[rule])


def _protein(profile: HealthProfile) -> NutrientBudget:
    per_kg = 0.8 * profile.weight_kg
    floors = [_Rule(per_kg, "default", "IOM DRI: protein RDA 0.8 g/kg/day")]
    if "pregnancy" in profile.conditions:
        floors.append(_Rule(per_kg + 25, "pregnancy", "IOM DRI: +25 g/day protein in pregnancy"))
    caps = []
    if "chronic_kidney_disease" in profile.conditions:
        caps.append(
            _Rule(
                per_kg,
                "chronic_kidney_disease",
                "KDOQI (2020): protein 0.55-0.8 g/kg/day in chronic kidney disease without dialysis "
                "(upper bound used as the cap)",
            )
        )
    return _budget("g", caps=caps, floors=floors)


def _fiber(energy_kcal: float) -> NutrientBudget:
    rule = _Rule(
        14 * energy_kcal / 1000, "default", "Dietary Guidelines 2020-2025: fiber 14 g per 1,000 kcal"
    )
    return _budget("g", floors=[rule])


def _hard_constraints(profile: HealthProfile) -> tuple[frozenset[str], frozenset[str], list[str]]:
    """(allergens to avoid, diet tags to require, why each was added beyond what the profile names)."""
    avoided = set(profile.avoid_allergens)
    required = set(profile.diet_goals)
    reasons: list[str] = []
    for condition in sorted(profile.conditions):
        condition_avoids = CONDITION_AVOIDED_ALLERGENS.get(condition, frozenset())
        condition_requires = CONDITION_REQUIRED_DIET_TAGS.get(condition, frozenset())
        if condition_avoids or condition_requires:
            avoided |= condition_avoids
            required |= condition_requires
            reasons.append(
                f"{condition}: avoid {', '.join(sorted(condition_avoids)) or 'nothing'}; "
                f"require {', '.join(sorted(condition_requires)) or 'nothing'} "
                f"({CONDITION_CONSTRAINT_SOURCES[condition]})"
            )
    with_implying = ALLERGENS.codes_implying(avoided)
    for allergen in sorted(with_implying - avoided):
        contained = sorted(ALLERGENS.implied_closure([allergen]) & avoided)
        reasons.append(f"avoid {allergen}: it always contains {', '.join(contained)}")
    return with_implying, frozenset(required), reasons


def derive_limits(profile: HealthProfile, *, today: date) -> DerivedLimits:
    """All budgets and hard constraints of `profile` on `today` (which turns a birth date into an age)."""
    age_years = profile.age_on(today)
    energy = estimate_energy(profile, today=today)
    energy_kcal = energy.target_kcal
    avoided, required, constraint_reasons = _hard_constraints(profile)
    return DerivedLimits(
        age_years=age_years,
        meal_share=MEAL_SHARE,
        bmr_kcal=round(energy.bmr_kcal, 1),
        tdee_kcal=round(energy.tdee_kcal, 1),
        energy_kcal=NutrientBudget(
            unit="kcal",
            day_max=_rounded(energy_kcal),
            meal_max=_rounded(energy_kcal * MEAL_SHARE),
            reasons=energy.reasons,
            sources=energy.sources,
        ),
        sodium_mg=_sodium(profile.conditions, age_years),
        added_sugar_g=_added_sugar(profile, age_years, energy_kcal),
        total_sugar_g=_total_sugar(energy_kcal),
        carbs_g=_carbohydrate(profile.conditions, energy_kcal),
        saturated_fat_g=_saturated_fat(profile.conditions, energy_kcal),
        potassium_mg=_potassium(profile.conditions),
        protein_g=_protein(profile),
        fiber_g=_fiber(energy_kcal),
        effective_avoid_allergens=avoided,
        effective_required_diet_tags=required,
        hard_constraint_reasons=constraint_reasons,
    )
