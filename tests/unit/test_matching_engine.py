"""The matching engine against the brute-force oracle, over random catalogs and random profiles (hypothesis)."""

from __future__ import annotations

import random
import uuid
from datetime import date
from decimal import Decimal
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from nutrimatch.health import HealthProfile, derive_limits
from nutrimatch.health.profile import ACTIVITY_LEVELS, CONDITIONS, SEXES
from nutrimatch.matching import engine, oracle, snapshot
from nutrimatch.matching.engine import Filters, rank
from nutrimatch.matching.features import NUTRIENT_COLUMNS
from nutrimatch.matching.scoring import ScoringPlan, plan_for
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS, allergens_contradicting

TODAY = date(2026, 11, 1)
CATEGORIES = ["bakery", "dairy", "snacks", "drinks"]
VENDOR = uuid.UUID(int=1)

# A few recurring amounts make exact ties (broken by id) common; free amounts cover the rest.
amounts = st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal("0.4"), Decimal(5), Decimal(140), Decimal(900)]),
                    st.decimals(min_value=0, max_value=3000, places=2))
prices = st.one_of(st.none(), st.sampled_from([Decimal("1.99"), Decimal("5.00")]),
                   st.decimals(min_value=0, max_value=40, places=2))
allergen_codes = st.frozensets(st.sampled_from(sorted(ALLERGENS)), max_size=3)
diet_codes = st.frozensets(st.sampled_from(sorted(DIET_TAGS)), max_size=4)


@st.composite
def products(draw: st.DrawFn) -> dict[str, object]:
    product: dict[str, object] = {
        "id": draw(st.uuids()),
        "status": draw(st.sampled_from(["active", "active", "active", "retired", "draft"])),
        "category": draw(st.one_of(st.none(), st.sampled_from(CATEGORIES))),
        "price": draw(prices),
        "nutrient_basis": draw(st.sampled_from(["per_serving", "per_100g"])),
        "serving_size_g": draw(st.one_of(st.none(), st.decimals(min_value=1, max_value=500, places=2))),
        "allergens": draw(st.one_of(st.none(), allergen_codes.map(sorted))),
        "dietary_tags": sorted(draw(diet_codes)),
    }
    product.update({name: draw(amounts) for name in NUTRIENT_COLUMNS})
    return product


@st.composite
def plans(draw: st.DrawFn) -> ScoringPlan:
    profile = HealthProfile(
        height_cm=draw(st.integers(150, 200)), weight_kg=draw(st.integers(45, 130)), age=draw(st.integers(18, 90)),
        sex=draw(st.sampled_from(SEXES)), activity_level=draw(st.sampled_from(ACTIVITY_LEVELS)),
        conditions=draw(st.frozensets(st.sampled_from(CONDITIONS), max_size=4)),
        avoid_allergens=draw(st.frozensets(st.sampled_from(sorted(ALLERGENS)), max_size=2)),
        diet_goals=draw(st.frozensets(st.sampled_from(["vegetarian", "gluten_free", "kosher", "vegan"]), max_size=1)),
    )
    return plan_for(profile.conditions, derive_limits(profile, today=TODAY))


filters = st.builds(Filters, category=st.one_of(st.none(), st.sampled_from([*CATEGORIES, "unknown-category"])),
                    max_price=st.one_of(st.none(), st.decimals(min_value=0, max_value=30, places=3),
                                        st.sampled_from([Decimal(-1), Decimal("1e15")])))


def assert_safe(catalog: list[dict[str, object]], ranked_ids: list[uuid.UUID], plan: ScoringPlan,
                allow_unknown: bool) -> None:
    """Every returned product is active, free of avoided allergens and carries every required diet tag."""
    by_id = {p["id"]: p for p in catalog}
    for product_id in ranked_ids:
        product = by_id[product_id]
        assert product["status"] == "active"
        allergens = product["allergens"]
        if allergens is None:
            assert allow_unknown or not plan.avoid_allergens
        else:
            contained = ALLERGENS.implied_closure(allergens)  # type: ignore[arg-type]
            assert not contained & (plan.avoid_allergens | allergens_contradicting(plan.required_diet_tags))
        assert plan.required_diet_tags <= DIET_TAGS.implied_closure(product["dietary_tags"])  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(catalog=st.lists(products(), max_size=80, unique_by=lambda p: p["id"]), plan=plans(),
       filters=filters, k=st.integers(1, 15), allow_unknown=st.booleans(), leaf_size=st.sampled_from([1, 3, 8, 64]),
       group_leaves=st.sampled_from([1, 2, 5, 64]), probe=st.sampled_from([1, 16, 4096]))
def test_engine_equals_brute_force_oracle(catalog, plan, filters, k, allow_unknown, leaf_size, group_leaves, probe):
    with mock.patch.object(snapshot, "LEAF_SIZE", leaf_size), mock.patch.object(engine, "PROBE_PRODUCTS", probe), \
            mock.patch.object(snapshot, "GROUP_LEAVES", group_leaves):
        features = snapshot.from_products(VENDOR, 7, catalog)
        ranking = rank(features, plan, k=k, filters=filters, allow_unknown_allergens=allow_unknown)
    expected = oracle.top_k(catalog, plan, k=k, filters=filters, allow_unknown_allergens=allow_unknown)
    assert [(item.product_id, item.score) for item in ranking.items] == expected
    assert ranking.eligible_count == oracle.eligible_count(catalog, plan, filters=filters,
                                                           allow_unknown_allergens=allow_unknown)
    assert_safe(catalog, [item.product_id for item in ranking.items], plan, allow_unknown)


def random_catalog(rng: random.Random, size: int) -> list[dict[str, object]]:
    """Products whose nutrients vary together (one scale per product), as real foods' do."""
    def amount(typical: float, scale: float) -> float | None:
        return None if rng.random() < 0.05 else round(typical * scale * rng.lognormvariate(0, 0.6), 2)

    catalog = []
    for _ in range(size):
        scale = rng.lognormvariate(0, 0.7)
        catalog.append({
            "id": uuid.UUID(int=rng.getrandbits(128)), "status": "active", "nutrient_basis": "per_serving",
            "category": rng.choice(CATEGORIES), "allergens": rng.sample(sorted(ALLERGENS), rng.choice([0, 0, 1, 2])),
            "dietary_tags": rng.sample(sorted(DIET_TAGS), rng.choice([0, 1, 2, 3])),
            **{name: amount(typical, scale) for name, typical in TYPICAL_AMOUNTS.items()}})
    return catalog


TYPICAL_AMOUNTS = {"sodium_mg": 350, "added_sugar_g": 4, "sugar_g": 8, "saturated_fat_g": 2.5, "carbs_g": 25,
                   "potassium_mg": 250, "calories": 200, "fiber_g": 3, "protein_g": 8}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), plan=plans(), k=st.integers(1, 30), group_leaves=st.sampled_from([3, 16]))
def test_pruning_is_exact_on_larger_catalogs(seed, plan, k, group_leaves):
    """Many leaves and groups, small probes: most are pruned, and the answer is still the oracle's."""
    catalog = random_catalog(random.Random(seed), 2000)
    with mock.patch.object(snapshot, "LEAF_SIZE", 8), mock.patch.object(snapshot, "GROUP_LEAVES", group_leaves), \
            mock.patch.object(engine, "PROBE_PRODUCTS", 24):
        features = snapshot.from_products(VENDOR, 1, catalog)
        ranking = rank(features, plan, k=k)
    expected = oracle.top_k(catalog, plan, k=k)
    assert [(item.product_id, item.score) for item in ranking.items] == expected


def test_most_of_a_catalog_is_never_scored():
    """Grocery catalogs repeat nutrition panels (one per recipe and size): leaves of alike products bound tightly."""
    rng = random.Random(5)
    panels = random_catalog(rng, 60)
    catalog = [{**rng.choice(panels), "id": uuid.UUID(int=rng.getrandbits(128))} for _ in range(20_000)]
    profile = HealthProfile(height_cm=170, weight_kg=80, age=60, conditions=frozenset({"hypertension"}))
    plan = plan_for(profile.conditions, derive_limits(profile, today=TODAY))
    with mock.patch.object(engine, "PROBE_PRODUCTS", 256):
        ranking = rank(snapshot.from_products(VENDOR, 1, catalog), plan, k=20)
    assert [(item.product_id, item.score) for item in ranking.items] == oracle.top_k(catalog, plan, k=20)
    assert ranking.scored_products < len(catalog) / 10


def test_an_allergen_implied_by_another_is_excluded():
    """Someone avoiding gluten never gets a wheat product, even one that does not list gluten."""
    profile = HealthProfile(height_cm=170, weight_kg=70, age=40, avoid_allergens=frozenset({"gluten"}))
    plan = plan_for(profile.conditions, derive_limits(profile, today=TODAY))
    wheat = {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": ["wheat"], "dietary_tags": []}
    plain = {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": [], "dietary_tags": []}
    ranking = rank(snapshot.from_products(VENDOR, 1, [wheat, plain]), plan, k=5)
    assert [item.product_id for item in ranking.items] == [plain["id"]]


def test_a_vegan_product_meets_a_vegetarian_goal_but_plant_based_does_not_meet_vegan():
    vegetarian = HealthProfile(height_cm=170, weight_kg=70, age=40, diet_goals=frozenset({"vegetarian"}))
    vegan = HealthProfile(height_cm=170, weight_kg=70, age=40, diet_goals=frozenset({"vegan"}))
    vegan_product = {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": [], "dietary_tags": ["vegan"]}
    plant_based = {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": [],
                   "dietary_tags": ["plant_based"]}
    features = snapshot.from_products(VENDOR, 1, [vegan_product, plant_based])
    for profile, expected in ((vegetarian, [vegan_product["id"]]), (vegan, [vegan_product["id"]])):
        plan = plan_for(profile.conditions, derive_limits(profile, today=TODAY))
        assert [item.product_id for item in rank(features, plan, k=5).items] == expected


def test_a_diet_goal_is_not_met_by_a_product_whose_declared_allergens_belie_its_tag():
    def product(allergens: list[str] | None, tags: list[str]) -> dict[str, object]:
        return {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": allergens, "dietary_tags": tags}

    vegan_milk, vegan_fish = product(["milk"], ["vegan"]), product(["fish"], ["vegan"])
    gluten_free_wheat, dairy_free_milk = product(["wheat"], ["gluten_free"]), product(["milk"], ["dairy_free"])
    vegan, vegan_undeclared = product([], ["vegan"]), product(None, ["vegan"])
    catalog = [vegan_milk, vegan_fish, gluten_free_wheat, dairy_free_milk, vegan, vegan_undeclared]
    features = snapshot.from_products(VENDOR, 1, catalog)
    sound = {vegan["id"], vegan_undeclared["id"]}  # without allergies, the tag is what a person relies on
    expected = {
        "vegan": sound, "vegetarian": sound | {vegan_milk["id"]}, "dairy_free": sound | {vegan_fish["id"]},
        "gluten_free": set(),
    }
    for goal, eligible in expected.items():
        profile = HealthProfile(height_cm=170, weight_kg=70, age=40, diet_goals=frozenset({goal}))
        plan = plan_for(profile.conditions, derive_limits(profile, today=TODAY))
        assert {item.product_id for item in rank(features, plan, k=10).items} == eligible, goal
        assert {p["id"] for p in catalog if oracle.is_eligible(p, plan, Filters(), False)} == eligible, goal


def test_celiac_disease_excludes_wheat_and_requires_gluten_free():
    celiac = HealthProfile(height_cm=170, weight_kg=70, age=40, conditions=frozenset({"celiac_disease"}))
    plan = plan_for(celiac.conditions, derive_limits(celiac, today=TODAY))
    labelled = {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": [], "dietary_tags": ["gluten_free"]}
    unlabelled = {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": [], "dietary_tags": []}
    contradictory = {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": ["wheat"],
                     "dietary_tags": ["gluten_free"]}
    ranking = rank(snapshot.from_products(VENDOR, 1, [labelled, unlabelled, contradictory]), plan, k=5)
    assert [item.product_id for item in ranking.items] == [labelled["id"]]


def test_unknown_allergens_are_excluded_for_allergic_people_unless_the_vendor_accepts_them():
    allergic = HealthProfile(height_cm=170, weight_kg=70, age=40, avoid_allergens=frozenset({"milk"}))
    plan = plan_for(allergic.conditions, derive_limits(allergic, today=TODAY))
    unknown = {"id": uuid.uuid4(), "nutrient_basis": "per_serving", "allergens": None, "dietary_tags": []}
    features = snapshot.from_products(VENDOR, 1, [unknown])
    assert rank(features, plan, k=5).items == []
    accepted = rank(features, plan, k=5, allow_unknown_allergens=True).items
    assert [item.product_id for item in accepted] == [unknown["id"]]


def test_snapshot_survives_its_byte_form():
    catalog = [{"id": uuid.uuid4(), "nutrient_basis": "per_100g", "serving_size_g": 30, "sodium_mg": 400 + i,
                "fiber_g": i / 10, "allergens": ["milk"] if i % 2 else [], "dietary_tags": ["vegan"],
                "category": CATEGORIES[i % 4], "price": Decimal(i) / 4} for i in range(200)]
    with mock.patch.object(snapshot, "LEAF_SIZE", 16):
        original = snapshot.from_products(VENDOR, 3, catalog)
    copy = snapshot.FeatureSnapshot.from_bytes(original.to_bytes())
    assert (copy.vendor_id, copy.catalog_version, copy.categories) == (VENDOR, 3, tuple(sorted(CATEGORIES)))
    profile = HealthProfile(height_cm=170, weight_kg=70, age=40, conditions=frozenset({"hypertension"}))
    plan = plan_for(profile.conditions, derive_limits(profile, today=TODAY))
    query = Filters(category="dairy", max_price=Decimal(30))
    assert rank(copy, plan, k=10, filters=query) == rank(original, plan, k=10, filters=query)


def test_an_empty_catalog_ranks_nothing():
    profile = HealthProfile(height_cm=170, weight_kg=70, age=40)
    plan = plan_for(profile.conditions, derive_limits(profile, today=TODAY))
    ranking = rank(snapshot.from_products(VENDOR, 0, []), plan, k=20)
    assert (ranking.items, ranking.eligible_count) == ([], 0)
