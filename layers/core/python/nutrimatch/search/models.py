"""What a product search asks for and what it answers (the HTTP query string maps onto SearchRequest)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field

from nutrimatch.db.routing import Freshness
from nutrimatch.vocabulary import normalize_allergens, normalize_diet_tags

MAX_PAGE_SIZE = 100
MAX_QUERY_LENGTH = 200


class Sort(StrEnum):
    """Every order but relevance is exact and backed by an index (sql/migrations/0007_search.sql, 0015)."""

    RELEVANCE = "relevance"
    NAME = "name"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    CALORIES_ASC = "calories_asc"
    CALORIES_DESC = "calories_desc"
    PROTEIN_ASC = "protein_g_asc"
    PROTEIN_DESC = "protein_g_desc"
    SUGAR_ASC = "sugar_g_asc"
    SUGAR_DESC = "sugar_g_desc"
    SODIUM_ASC = "sodium_mg_asc"
    SODIUM_DESC = "sodium_mg_desc"


class Facet(StrEnum):
    DIET_TAGS = "diet_tags"
    CATEGORY = "category"


def _split(raw: object) -> list[str]:
    """A comma-separated query parameter, given once or repeated."""
    values: Iterable[object] = raw if isinstance(raw, list | tuple | set | frozenset) else [raw]
    return [part.strip() for value in values if value is not None for part in str(value).split(",") if part.strip()]


def _diet_tags(raw: object) -> frozenset[str]:
    codes, unknown = normalize_diet_tags(_split(raw))
    if unknown:
        raise ValueError(f"unknown diet tag(s): {', '.join(unknown)}")
    return codes


def _allergens(raw: object) -> frozenset[str]:
    codes, unknown = normalize_allergens(_split(raw))
    if unknown:
        raise ValueError(f"unknown allergen(s): {', '.join(unknown)}")
    return codes


def _facets(raw: object) -> frozenset[Facet]:
    names = _split(raw)
    if [name.lower() for name in names] in (["all"], ["true"]):
        return frozenset(Facet)
    unknown = [name for name in names if name not in Facet.__members__.values()]
    if unknown:
        raise ValueError(f"unknown facet(s): {', '.join(unknown)}; choose from {', '.join(Facet)}")
    return frozenset(Facet(name) for name in names)


Amount = Annotated[float | None, Field(ge=0)]


class SearchRequest(BaseModel):
    """A search (`q` given) or a browse (no `q`) of one vendor's catalog. Ranges are inclusive; a product
    whose value is unknown (NULL) never satisfies a range."""

    q: str | None = Field(default=None, max_length=MAX_QUERY_LENGTH,
                          description='Search text: words, "quoted phrases", -excluded words; the last word '
                                      "is matched as a prefix while it is being typed")
    category: str | None = Field(default=None, max_length=200, description="Exact category")
    brand: str | None = Field(default=None, max_length=200, description="Exact brand")
    diet: Annotated[frozenset[str], BeforeValidator(_diet_tags)] = Field(
        default=frozenset(), description="Comma-separated diet tags the product must all carry (vegan, keto, …)")
    allergen_free: Annotated[frozenset[str], BeforeValidator(_allergens)] = Field(
        default=frozenset(), description="Comma-separated allergens the product must not contain; products "
                                         "without allergen information never qualify")
    status: Literal["active", "retired", "draft"] = "active"
    price_min: Amount = None
    price_max: Amount = None
    calories_min: Amount = None
    calories_max: Amount = None
    protein_g_min: Amount = None
    protein_g_max: Amount = None
    carbs_g_min: Amount = None
    carbs_g_max: Amount = None
    fat_g_min: Amount = None
    fat_g_max: Amount = None
    saturated_fat_g_min: Amount = None
    saturated_fat_g_max: Amount = None
    fiber_g_min: Amount = None
    fiber_g_max: Amount = None
    sugar_g_min: Amount = None
    sugar_g_max: Amount = None
    added_sugar_g_min: Amount = None
    added_sugar_g_max: Amount = None
    sodium_mg_min: Amount = None
    sodium_mg_max: Amount = None
    potassium_mg_min: Amount = None
    potassium_mg_max: Amount = None
    sort: Sort | None = Field(default=None, description="Default: relevance with q, name without")
    cursor: str | None = Field(default=None, max_length=1024, description="next_cursor of the previous page")
    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)
    facets: Annotated[frozenset[Facet], BeforeValidator(_facets)] = Field(
        default=frozenset(), description="Comma-separated: diet_tags, category; `all` (or `true`) for every one")


RANGE_COLUMNS = ("price", "calories", "protein_g", "carbs_g", "fat_g", "saturated_fat_g", "fiber_g", "sugar_g",
                 "added_sugar_g", "sodium_mg", "potassium_mg")


class Product(BaseModel):
    id: UUID
    external_id: str
    name: str
    brand: str | None
    description: str | None
    category: str | None
    price: float | None
    currency: str
    nutrient_basis: str
    serving_size_g: float | None
    calories: float | None
    protein_g: float | None
    carbs_g: float | None
    fat_g: float | None
    saturated_fat_g: float | None
    fiber_g: float | None
    sugar_g: float | None
    added_sugar_g: float | None
    sodium_mg: float | None
    potassium_mg: float | None
    ingredients: str | None
    allergens: list[str] | None = Field(description="null: the vendor did not say")
    dietary_tags: list[str]
    status: str
    updated_at: datetime


class ProductHit(Product):
    score: float | None = Field(default=None, description="Relevance (sort=relevance only)")


class FacetCount(BaseModel):
    value: str
    count: int


class Facets(BaseModel):
    diet_tags: list[FacetCount] | None = None
    category: list[FacetCount] | None = None
    counted: int = Field(description="How many matching products the counts cover")
    exact: bool = Field(description="False when more products match than were counted (a sample)")


class ReadMeta(BaseModel):
    freshness: Freshness
    replica_lag_seconds: float | None = Field(description="The replica's measured lag; null if unreachable")
    served_by: Literal["replica", "primary"] = Field(description="Diagnostic: which server answered")


class SearchResults(ReadMeta):
    products: list[ProductHit]
    next_cursor: str | None
    sort: Sort
    facets: Facets | None = None


class ProductRead(ReadMeta):
    product: Product
