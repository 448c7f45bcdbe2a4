"""A customer's health profile (PHI): body measures, conditions and the hard constraints they ask for.

Validation is pure: no clock is read. A profile gives either `age` or `birth_date`; a birth date is turned
into an age only against a `today` the caller passes, either at validation time through the pydantic context
(`HealthProfile.model_validate(data, context={"today": today})`, which then rejects impossible birth dates
with a field error) or later through `age_on(today)`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from nutrimatch.errors import InvalidInput
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS, Vocabulary

Sex = Literal["female", "male", "unspecified"]
ActivityLevel = Literal["sedentary", "light", "moderate", "active", "very_active"]
Condition = Literal[
    "diabetes_type_1",
    "diabetes_type_2",
    "prediabetes",
    "hypertension",
    "chronic_kidney_disease",
    "celiac_disease",
    "heart_disease",
    "pregnancy",
    "weight_loss",
    "high_cholesterol",
]
CONDITIONS: tuple[Condition, ...] = get_args(Condition)
ACTIVITY_LEVELS: tuple[ActivityLevel, ...] = get_args(ActivityLevel)
SEXES: tuple[Sex, ...] = get_args(Sex)

MIN_AGE_YEARS = 1
MAX_AGE_YEARS = 125
MAX_NOTES_CHARS = 2000


def _sorted_list(values: frozenset[str]) -> list[str]:
    """Sets serialise in sorted order so the same profile always gives the same JSON (cache keys, hashes)."""
    return sorted(values)


def _vocabulary_codes(vocabulary: Vocabulary) -> Callable[[Any], Any]:
    """A before-validator turning codes or synonyms (a list or one delimited string) into canonical codes."""

    def to_codes(value: Any) -> Any:
        is_strings = isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value)
        if not (isinstance(value, str) or is_strings):
            return value  # not strings: let the declared frozenset[str] type report the shape error
        codes, unknown = vocabulary.normalize(value)
        if unknown:
            raise PydanticCustomError(
                f"unknown_{vocabulary.kind}",
                "unknown {kind} {unknown}: use one of {codes} or a known synonym",
                {"kind": vocabulary.kind, "unknown": ", ".join(map(repr, unknown)), "codes": ", ".join(vocabulary)},
            )
        return codes

    return to_codes


_SortedSet = PlainSerializer(_sorted_list, return_type=list[str], when_used="json")
CodeSet = Annotated[frozenset[str], _SortedSet]
"""A set of vocabulary codes that serialises to a sorted JSON list."""
AllergenCodes = Annotated[frozenset[str], BeforeValidator(_vocabulary_codes(ALLERGENS)), _SortedSet]
DietTagCodes = Annotated[frozenset[str], BeforeValidator(_vocabulary_codes(DIET_TAGS)), _SortedSet]


def completed_years(birth_date: date, today: date) -> int:
    """Age in whole years on `today` (a 29 February birthday counts from 1 March in common years)."""
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def _birth_date_problem(birth_date: date, today: date) -> str | None:
    if birth_date >= today:
        return f"birth_date must be in the past (today is {today.isoformat()})"
    years = completed_years(birth_date, today)
    if not MIN_AGE_YEARS <= years <= MAX_AGE_YEARS:
        return f"birth_date gives an age of {years}; it must be {MIN_AGE_YEARS}-{MAX_AGE_YEARS} years"
    return None


class HealthProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    height_cm: float = Field(ge=50, le=272, allow_inf_nan=False)
    weight_kg: float = Field(ge=2, le=650, allow_inf_nan=False)
    # strict: `true` would otherwise be read as an age of 1, and give a toddler's limits
    age: int | None = Field(default=None, ge=MIN_AGE_YEARS, le=MAX_AGE_YEARS, strict=True, description="Years.")
    birth_date: date | None = Field(default=None, description="Alternative to age; must lie in the past.")
    sex: Sex = Field(default="unspecified", description="Sex for the energy equation.")
    activity_level: ActivityLevel = Field(
        default="sedentary", description="Sedentary when unknown: the lowest energy estimate is the safe one."
    )
    conditions: Annotated[frozenset[Condition], _SortedSet] = frozenset()
    avoid_allergens: AllergenCodes = Field(default=frozenset(), description="Allergen codes or synonyms.")
    diet_goals: DietTagCodes = Field(default=frozenset(), description="Diet tag codes or synonyms.")
    notes: str | None = Field(default=None, max_length=MAX_NOTES_CHARS)

    @field_validator("birth_date")
    @classmethod
    def _birth_date_is_plausible(cls, value: date | None, info: ValidationInfo) -> date | None:
        today = info.context.get("today") if isinstance(info.context, dict) else None
        if value is not None and isinstance(today, date):
            problem = _birth_date_problem(value, today)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _exactly_one_of_age_and_birth_date(self) -> Self:
        if (self.age is None) == (self.birth_date is None):
            raise ValueError("give exactly one of age and birth_date")
        return self

    def age_on(self, today: date) -> int:
        """Age in years on `today`; raises InvalidInput if birth_date gives no plausible age then."""
        if self.birth_date is None:
            assert self.age is not None  # guaranteed by _exactly_one_of_age_and_birth_date
            return self.age
        problem = _birth_date_problem(self.birth_date, today)
        if problem:
            raise InvalidInput(problem, details={"field": "birth_date"})
        return completed_years(self.birth_date, today)

