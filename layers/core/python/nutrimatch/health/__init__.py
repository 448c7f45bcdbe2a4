"""Health logic: profiles, energy needs and the nutrient limits matching scores against. Pure: no I/O."""

from nutrimatch.health.energy import EnergyEstimate, basal_metabolic_rate, estimate_energy
from nutrimatch.health.limits import MEAL_SHARE, DerivedLimits, NutrientBudget, derive_limits
from nutrimatch.health.profile import ActivityLevel, Condition, HealthProfile, Sex

__all__ = [
    "MEAL_SHARE",
    "ActivityLevel",
    "Condition",
    "DerivedLimits",
    "EnergyEstimate",
    "HealthProfile",
    "NutrientBudget",
    "Sex",
    "basal_metabolic_rate",
    "derive_limits",
    "estimate_energy",
]
