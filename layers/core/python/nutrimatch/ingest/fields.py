"""The target fields an uploaded CSV is mapped onto, per kind of upload, with their types and units.

Nutrient values are stored in one canonical unit per field (energy in kcal, masses in g or mg); a column in
another unit is converted on load with the factor `conversion_factor` gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IngestKind(StrEnum):
    PRODUCTS = "products"
    CUSTOMERS = "customers"


class FieldType(StrEnum):
    TEXT = "text"
    NUMERIC = "numeric"
    TEXT_LIST = "text_list"


class Unit(StrEnum):
    KCAL = "kcal"
    KJ = "kJ"
    G = "g"
    MG = "mg"
    MCG = "mcg"


# Each unit's size in the base unit of its dimension: energy in kcal, mass in grams.
_ENERGY_IN_KCAL = {Unit.KCAL: 1.0, Unit.KJ: 1 / 4.184}
_MASS_IN_GRAMS = {Unit.G: 1.0, Unit.MG: 1e-3, Unit.MCG: 1e-6}


def conversion_factor(source: Unit, target: Unit) -> float | None:
    """What a value in `source` is multiplied by to express it in `target`; None across dimensions."""
    for dimension in (_ENERGY_IN_KCAL, _MASS_IN_GRAMS):
        if source in dimension and target in dimension:
            return dimension[source] / dimension[target]
    return None


@dataclass(frozen=True)
class TargetField:
    name: str
    type: FieldType
    required: bool = False
    unit: Unit | None = None
    """Canonical unit of a quantity field; None for fields without one."""
    nutrient: bool = False
    """A nutrient amount, declared per serving or per 100 g/ml (serving size has a unit but no basis)."""


def _nutrient(name: str, unit: Unit) -> TargetField:
    return TargetField(name, FieldType.NUMERIC, unit=unit, nutrient=True)


PRODUCT_FIELDS: tuple[TargetField, ...] = (
    TargetField("external_id", FieldType.TEXT, required=True),
    TargetField("name", FieldType.TEXT, required=True),
    TargetField("brand", FieldType.TEXT),
    TargetField("description", FieldType.TEXT),
    TargetField("category", FieldType.TEXT),
    TargetField("price", FieldType.NUMERIC),
    TargetField("currency", FieldType.TEXT),
    _nutrient("calories", Unit.KCAL),
    _nutrient("protein_g", Unit.G),
    _nutrient("carbs_g", Unit.G),
    _nutrient("fat_g", Unit.G),
    _nutrient("saturated_fat_g", Unit.G),
    _nutrient("fiber_g", Unit.G),
    _nutrient("sugar_g", Unit.G),
    _nutrient("added_sugar_g", Unit.G),
    _nutrient("sodium_mg", Unit.MG),
    _nutrient("potassium_mg", Unit.MG),
    TargetField("serving_size_g", FieldType.NUMERIC, unit=Unit.G),
    TargetField("ingredients", FieldType.TEXT),
    TargetField("allergens", FieldType.TEXT_LIST),
    TargetField("dietary_tags", FieldType.TEXT_LIST),
    TargetField("status", FieldType.TEXT),
)

CUSTOMER_FIELDS: tuple[TargetField, ...] = (
    TargetField("external_id", FieldType.TEXT, required=True),
    TargetField("name", FieldType.TEXT),
    TargetField("email", FieldType.TEXT),
    TargetField("locale", FieldType.TEXT),
    TargetField("status", FieldType.TEXT),
)

_FIELDS_BY_KIND = {IngestKind.PRODUCTS: PRODUCT_FIELDS, IngestKind.CUSTOMERS: CUSTOMER_FIELDS}


def fields_of(kind: IngestKind | str) -> tuple[TargetField, ...]:
    """The target fields of `kind`, in the order of the table's columns."""
    return _FIELDS_BY_KIND[IngestKind(kind)]


def field_of(kind: IngestKind | str, name: str) -> TargetField:
    """The target field `name` of `kind`; KeyError if `kind` has no such field."""
    for target in fields_of(kind):
        if target.name == name:
            return target
    raise KeyError(f"{IngestKind(kind)} has no field {name!r}")
