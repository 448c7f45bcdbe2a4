"""Energy needs: Mifflin-St Jeor resting energy, activity, and the energy target conditions adjust.

The Mifflin-St Jeor equation was fitted on adults; for under-18s it is only an approximation that a
clinician may override. Pure functions: the caller passes `today`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

from nutrimatch.errors import InvalidInput
from nutrimatch.health.profile import ActivityLevel, HealthProfile, Sex

# Mifflin-St Jeor's sex term; "unspecified" takes the mean of the two so neither sex is assumed.
SEX_CONSTANT_KCAL: Mapping[Sex, float] = MappingProxyType({"male": 5.0, "female": -161.0, "unspecified": -78.0})

ACTIVITY_FACTORS: Mapping[ActivityLevel, float] = MappingProxyType(
    {"sedentary": 1.2, "light": 1.375, "moderate": 1.55, "active": 1.725, "very_active": 1.9}
)

# The trimester is not recorded; the 2nd-trimester figure sits between the 1st (+0) and the 3rd (+452).
PREGNANCY_EXTRA_KCAL = 340.0
WEIGHT_LOSS_DEFICIT_KCAL = 500.0
# Below these, a weight-loss diet needs medical supervision; "unspecified" takes the higher (safer) floor.
WEIGHT_LOSS_FLOOR_KCAL: Mapping[Sex, float] = MappingProxyType(
    {"female": 1200.0, "male": 1500.0, "unspecified": 1500.0}
)

SOURCE_MIFFLIN = "Mifflin-St Jeor (1990): BMR = 10·kg + 6.25·cm - 5·age + 5 (male) / - 161 (female)"
SOURCE_ACTIVITY = "TDEE = BMR * activity factor (1.2, 1.375, 1.55, 1.725, 1.9)"
SOURCE_PREGNANCY = "IOM DRI (2005): +340 kcal/day in the 2nd trimester (trimester not recorded)"
SOURCE_WEIGHT_LOSS = (
    "NIH/NHLBI obesity guidelines: 500 kcal/day deficit, not below 1,200 kcal (women) / 1,500 kcal (men)"
)
SOURCE_PREGNANCY_NO_DEFICIT = "ACOG: weight-loss diets are not advised during pregnancy"


def basal_metabolic_rate(*, weight_kg: float, height_cm: float, age_years: int, sex: Sex) -> float:
    """Resting energy expenditure in kcal/day (Mifflin-St Jeor)."""
    return 10.0 * weight_kg + 6.25 * height_cm - 5.0 * age_years + SEX_CONSTANT_KCAL[sex]


def total_daily_energy_expenditure(bmr_kcal: float, activity_level: ActivityLevel) -> float:
    return bmr_kcal * ACTIVITY_FACTORS[activity_level]


class EnergyEstimate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bmr_kcal: float
    tdee_kcal: float
    target_kcal: float
    reasons: list[str]
    sources: list[str]


def estimate_energy(profile: HealthProfile, *, today: date) -> EnergyEstimate:
    """BMR, TDEE and the daily energy target after pregnancy and weight-loss adjustments.

    Raises InvalidInput when the measures give no positive resting energy, or birth_date no plausible age.
    """
    bmr = basal_metabolic_rate(
        weight_kg=profile.weight_kg, height_cm=profile.height_cm, age_years=profile.age_on(today), sex=profile.sex
    )
    if bmr <= 0:
        # Each measure is within its own range, but together they describe no living body.
        raise InvalidInput(
            f"height_cm, weight_kg and age give a resting energy of {bmr:.0f} kcal/day; check the measures",
            details={"fields": ["height_cm", "weight_kg", "age"]},
        )
    tdee = total_daily_energy_expenditure(bmr, profile.activity_level)
    target = tdee
    reasons = [f"activity level {profile.activity_level}"]
    sources = [SOURCE_MIFFLIN, SOURCE_ACTIVITY]
    if "pregnancy" in profile.conditions:
        target += PREGNANCY_EXTRA_KCAL
        reasons.append("pregnancy")
        sources.append(SOURCE_PREGNANCY)
        if "weight_loss" in profile.conditions:
            reasons.append("weight_loss ignored during pregnancy")
            sources.append(SOURCE_PREGNANCY_NO_DEFICIT)
    elif "weight_loss" in profile.conditions:
        # The floor never lifts the target above what the person burns: a deficit, never a surplus.
        target = min(tdee, max(tdee - WEIGHT_LOSS_DEFICIT_KCAL, WEIGHT_LOSS_FLOOR_KCAL[profile.sex]))
        reasons.append("weight_loss")
        sources.append(SOURCE_WEIGHT_LOSS)
    return EnergyEstimate(bmr_kcal=bmr, tdee_kcal=tdee, target_kcal=target, reasons=reasons, sources=sources)
