"""The matching API's request and response shapes (the seed's response, plus what makes it explainable)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field

MAX_K = 100
MAX_PRICE = Decimal("9999999999.99")
"""The highest price a product can have (numeric(12,2))."""


class MatchQuery(BaseModel):
    k: int = Field(default=20, ge=1, le=MAX_K, description="How many products (at most 100).")
    category: str | None = Field(default=None, min_length=1, max_length=200, description="Only this category.")
    max_price: Decimal | None = Field(default=None, ge=0, le=MAX_PRICE,
                                      description="Only products priced at most this.")


class MatchedProduct(BaseModel):
    id: UUID
    external_id: str
    name: str
    brand: str | None
    category: str | None
    price: Decimal | None
    currency: str
    nutrient_basis: str
    serving_size_g: Decimal | None
    nutrients_per_serving: dict[str, float | None] = Field(
        description="Amounts in one serving (per_100g values scaled by the serving size); null when not given.")
    allergens: list[str] | None = Field(description="Declared allergens; null when the vendor gave none.")
    dietary_tags: list[str]


class Match(BaseModel):
    product: MatchedProduct
    health_score: int = Field(description="Sum of the plan's points; the top is max_health_score.")
    reasons: list[str] = Field(description="One per scored nutrient, the most influential first.")
    flags: list[str] = Field(description="Caveats: allergens_unknown, serving_size_unknown, <nutrient>_unknown, ...")


class MatchResponse(BaseModel):
    customer_id: UUID
    matches: list[Match]
    generated_at: datetime
    health_constraints_applied: list[str] = Field(description="The conditions the score combines.")
    allergen_exclusions: list[str] = Field(
        description="Allergens excluded, including those conditions imply. (A required diet tag also excludes "
                    "products declaring an allergen that belies it: milk for vegan.)")
    required_diet_tags: list[str]
    catalog_version: int
    profile_version: int
    cached: bool
    eligible_count: int = Field(description="Products meeting every hard constraint and filter.")
    max_health_score: int
