"""Product search against the real database and replica: relevance, filters, sorting, pages, tenancy."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter

import pytest

from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.db.routing import get_router
from nutrimatch.errors import InvalidInput, NotFound
from nutrimatch.search import service
from nutrimatch.search.models import SearchRequest
from nutrimatch.settings import get_settings
from nutrimatch.tenancy.ids import entity_uuid
from tests.e2e.search_samples import insert_products, wait_for_replica


def _product(external_id, name, brand, category, price, calories, protein_g, sugar_g, sodium_mg, diet, allergens,
             description=None, ingredients=None, status="active"):
    return {"external_id": external_id, "name": name, "brand": brand, "category": category, "price": price,
            "calories": calories, "protein_g": protein_g, "sugar_g": sugar_g, "sodium_mg": sodium_mg,
            "dietary_tags": diet, "allergens": allergens, "description": description, "ingredients": ingredients,
            "status": status}


CATALOG = [
    _product("p01", "Honeycrisp Apples", "Orchard Fresh", "Produce", 5.99, 95, 0.5, 19, 2, ["vegan", "gluten_free"], [],
             "Crisp sweet apples, 3 lb bag", "apples"),
    _product("p02", "Apple Cinnamon Oatmeal", "Morning Mill", "Breakfast", 4.49, 160, 4, 12, 110, ["vegan"], ["gluten"],
             "Rolled oats with dried apple and cinnamon", "whole grain oats, dried apples, cinnamon, sugar"),
    _product("p03", "Sharp Cheddar Cheese", "Valley Creamery", "Dairy", 6.49, 110, 7, 0, 180,
             ["vegetarian", "gluten_free", "keto"], ["milk"], "Aged 12 months",
             "pasteurized milk, salt, cultures, enzymes"),
    _product("p04", "Cheese Crackers", "Snack Co", "Snacks", 3.29, 150, 3, 1, 250, ["vegetarian"], ["wheat", "milk"],
             "Baked crackers made with real cheese", "enriched wheat flour, cheddar cheese, vegetable oil, salt"),
    _product("p05", "Creamy Peanut Butter", "Nutty Farms", "Spreads", 3.99, 190, 8, 3, 140, ["vegan", "gluten_free"],
             ["peanuts"], "Smooth peanut butter", "roasted peanuts, salt"),
    _product("p06", "Butter Shortbread Cookies", "Bakehouse", "Bakery", 4.99, 140, 2, 8, 95, ["vegetarian"],
             ["wheat", "milk", "peanuts"], "Classic shortbread topped with peanut pieces",
             "wheat flour, butter, sugar, peanuts"),
    _product("p07", "Almond Milk Unsweetened", "Nutty Farms", "Beverages", 3.49, 30, 1, 0, 170,
             ["vegan", "dairy_free", "gluten_free", "keto"], ["tree_nuts"], "Dairy-free almond beverage",
             "filtered water, almonds, calcium carbonate, sea salt"),
    _product("p08", "Milk Chocolate Bar with Almonds", "Cocoa Bros", "Snacks", 2.49, 230, 4, 22, 35, ["vegetarian"],
             ["milk", "tree_nuts", "soybeans"], "Creamy milk chocolate with roasted almonds",
             "sugar, cocoa butter, milk, almonds, soy lecithin"),
    _product("p09", "Greek Yogurt Plain", "Valley Creamery", "Dairy", 5.49, 100, 18, 4, 65,
             ["vegetarian", "gluten_free", "high_protein"], ["milk"], "Thick strained yogurt, high in protein",
             "cultured pasteurized milk"),
    _product("p10", "Yogurt Covered Raisins", "Snack Co", "Snacks", 2.99, 190, 2, 30, 20,
             ["vegetarian", "gluten_free"], ["milk"], "Raisins in a yogurt coating, greek style",
             "raisins, sugar, yogurt powder (milk), palm kernel oil"),
    _product("p11", "Whole Wheat Bread", "Bakehouse", "Bakery", 3.99, 80, 4, 2, 150, ["vegan"], ["wheat"],
             "Sliced whole wheat loaf", "whole wheat flour, water, yeast, salt"),
    _product("p12", "Gluten-Free Bread", "Bakehouse", "Bakery", 6.99, 90, 2, 3, 190, ["gluten_free", "vegetarian"],
             ["eggs"], "Rice and tapioca sandwich bread", "rice flour, tapioca starch, eggs, yeast"),
    _product("p13", "Salted Potato Chips", "Snack Co", "Snacks", 1.99, 160, 2, 0, 170, ["vegan", "gluten_free"], None,
             "Kettle-cooked chips", "potatoes, sunflower oil, salt"),
    _product("p14", "Unsalted Mixed Nuts", "Nutty Farms", "Snacks", None, 170, 6, 1, 0,
             ["vegan", "gluten_free", "paleo", "keto"], ["tree_nuts", "peanuts"], "Almonds, cashews and peanuts",
             "almonds, cashews, peanuts"),
    _product("p15", "Chicken Noodle Soup", "Home Kitchen", "Soups", 2.79, 90, 6, 1, 890, [],
             ["wheat", "eggs", "celery"], "Classic soup with egg noodles",
             "chicken broth, egg noodles (wheat, eggs), chicken, carrots, celery"),
    _product("p16", "Apple Juice", "Orchard Fresh", "Beverages", 2.99, 120, 0, 26, 10, ["vegan"], [],
             "Pressed from apples", "apple juice", status="retired"),
    _product("p17", "Tomato Soup", "Home Kitchen", "Soups", 2.49, 110, 2, 10, 650, ["vegetarian", "gluten_free"],
             ["milk"], "Creamy tomato soup", "tomatoes, cream, salt"),
]
OTHER_VENDOR = [
    _product("p01", "Honeycrisp Apples", "Other Orchard", "Produce", 4.99, 95, 0.5, 19, 2, ["vegan"], [],
             "Apples of vendor B", "apples"),
    _product("b02", "Secret Apple Pie", "Other Bakery", "Bakery", 8.99, 300, 3, 25, 200, ["vegetarian"], ["wheat"],
             "Vendor B's pie", "apples, flour, butter"),
]


@pytest.fixture
def catalog(two_vendors):
    vendor_a, vendor_b = two_vendors
    insert_products(vendor_a.id, CATALOG)
    insert_products(vendor_b.id, OTHER_VENDOR)
    wait_for_replica()
    return vendor_a, vendor_b


def search(vendor, **params):
    return service.search_products(get_router(), vendor.id, SearchRequest(**params))


def names(vendor, **params):
    return [product.name for product in search(vendor, **params).products]


def external_ids(vendor, **params):
    return {product.external_id for product in search(vendor, limit=100, **params).products}


def all_pages(vendor, **params):
    """Every page of a search, following next_cursor."""
    seen, cursor = [], None
    while True:
        page = search(vendor, cursor=cursor, **params)
        seen += page.products
        cursor = page.next_cursor
        if cursor is None:
            return seen


def active(predicate):
    return {p["external_id"] for p in CATALOG if p["status"] == "active" and predicate(p)}


def _set_settings(monkeypatch, **values):
    for name, value in values.items():
        monkeypatch.setenv(name.upper(), str(value))
    get_settings.cache_clear()


# --- relevance ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "first"), [
    ("apples", "Honeycrisp Apples"),
    ("peanut butter", "Creamy Peanut Butter"),
    ("greek yogurt", "Greek Yogurt Plain"),
    ("almond milk", "Almond Milk Unsweetened"),
    ("gluten free bread", "Gluten-Free Bread"),
    ("cheddar", "Sharp Cheddar Cheese"),
    ("valley creamery yogurt", "Greek Yogurt Plain"),
])
def test_typical_queries_put_the_right_product_first(catalog, q, first):
    vendor, _ = catalog
    assert names(vendor, q=q)[0] == first


def test_a_name_match_outranks_an_ingredient_match(catalog):
    vendor, _ = catalog
    found = names(vendor, q="salt")
    assert found[0] in ("Salted Potato Chips", "Unsalted Mixed Nuts")
    assert "Tomato Soup" in found  # salt only among its ingredients


def test_stemming_finds_other_forms_of_a_word(catalog):
    vendor, _ = catalog
    assert external_ids(vendor, q="apple ") == external_ids(vendor, q="apples ") == {"p01", "p02"}
    assert "p06" in external_ids(vendor, q="cookie ")


def test_the_word_being_typed_matches_as_a_prefix(catalog):
    vendor, _ = catalog
    found = names(vendor, q="chee")
    assert "Chees" in found[0] or "Cheddar" in found[0]
    assert set(found) == {"Sharp Cheddar Cheese", "Cheese Crackers"}
    assert names(vendor, q="honeycr") == ["Honeycrisp Apples"]
    assert names(vendor, q="apple cinn") == ["Apple Cinnamon Oatmeal"]
    assert names(vendor, q="chee ") == []  # a finished word is a whole word: there is no "chee"


@pytest.mark.parametrize(("word", "expected"), [
    ("chocolate", {"p08"}), ("cinnamon", {"p02"}), ("creamery", {"p03", "p09"}), ("unsweetened", {"p07"}),
    ("crackers", {"p04"}), ("vegetable", {"p04"}), ("shortbread", {"p06"}),
])
def test_every_prefix_of_a_word_being_typed_finds_it(catalog, word, expected):
    vendor, _ = catalog
    missed = [word[:n] for n in range(2, len(word) + 1) if not expected <= external_ids(vendor, q=word[:n])]
    assert missed == []


def test_a_prefix_past_a_stem_finds_the_stem_only_where_a_suffix_could_begin(catalog):
    vendor, _ = catalog
    assert external_ids(vendor, q="peanutb") == set()  # b begins no suffix: not a longer form of peanut
    assert external_ids(vendor, q="peanu") >= {"p05", "p06", "p14"}


def test_a_stop_word_being_typed_after_words_leaves_them_to_decide(catalog):
    vendor, _ = catalog
    assert external_ids(vendor, q="salt and") == external_ids(vendor, q="salt ") != set()
    assert names(vendor, q="peanut and butt") == names(vendor, q="peanut butt")


def test_a_stop_word_typed_alone_is_a_prefix(catalog):
    vendor, _ = catalog
    insert_products(vendor.id, [_product("t01", "Steel Thermos Flask", "Camp Co", "Kitchen", 19.0, None, None, None,
                                         None, [], [])])
    wait_for_replica()
    assert names(vendor, q="the") == ["Steel Thermos Flask"]


def _analyze(database):
    with database.admin() as conn:
        conn.execute("ANALYZE products")
    wait_for_replica()


@pytest.mark.parametrize("q", ["apple cinn", "whole wh", "snack co", "sea sa", "peanut butt"])
def test_a_prefix_checked_on_the_matches_of_the_other_words_finds_the_same_products(catalog, database,
                                                                                    monkeypatch, q):
    vendor, _ = catalog
    _analyze(database)  # the planner's estimates decide the lookup; without statistics there are none
    looked_up = [p.external_id for p in search(vendor, q=q, limit=100).products]
    _set_settings(monkeypatch, search_prefix_lookup_ratio=0)  # check the prefix row by row whenever possible
    checked = [p.external_id for p in search(vendor, q=q, limit=100).products]
    assert checked == looked_up and looked_up


def test_match_estimates_cover_only_the_current_tenant(catalog, database):
    vendor_a, vendor_b = catalog
    _analyze(database)
    estimates = {}
    for vendor in (vendor_a, vendor_b, None):
        with scoped_transaction(get_database().writer, vendor.id if vendor else None, read_only=True) as conn:
            row = conn.execute("SELECT search_match_estimate(to_tsquery('english', 'apple')) AS n").fetchone()
            estimates[vendor.slug if vendor else None] = row["n"]
    assert estimates["vendor-a"] > 0 and estimates["vendor-b"] > 0
    assert estimates[None] is None  # no tenant, no partition to estimate from


def test_a_quoted_phrase_needs_its_words_together(catalog):
    vendor, _ = catalog
    assert names(vendor, q='"peanut butter"') == ["Creamy Peanut Butter"]
    assert "Butter Shortbread Cookies" in names(vendor, q="peanut butter")


def test_a_minus_excludes_a_word(catalog):
    vendor, _ = catalog
    assert names(vendor, q="soup -chicken") == ["Tomato Soup"]
    with pytest.raises(InvalidInput) as raised:
        search(vendor, q="-chicken")
    assert raised.value.details == {"field": "q"}


def test_or_and_stop_words(catalog):
    vendor, _ = catalog
    assert external_ids(vendor, q="yogurt or cheddar") == {"p03", "p04", "p09", "p10"}
    assert names(vendor, q="the and of ") == []


def test_facets_of_search_text_without_words_count_nothing(catalog):
    vendor, _ = catalog
    facets = search(vendor, q="the and of ", facets="diet_tags,category").facets
    assert facets is not None
    assert (facets.diet_tags, facets.category, facets.counted, facets.exact) == ([], [], 0, True)


@pytest.mark.parametrize("q", ["a & b", "'", "!!", "(((", "peanut:*", "\\", "a <-> b", "x:A", "\x00",
                               "'; DROP TABLE x"])
def test_user_text_never_becomes_query_syntax(catalog, q):
    vendor, _ = catalog
    search(vendor, q=q)  # answers (usually nothing) instead of failing


def test_relevance_pages_walk_the_ranked_matches(catalog):
    vendor, _ = catalog
    whole = [p.external_id for p in search(vendor, q="salt", limit=100).products]
    paged = [p.external_id for p in all_pages(vendor, q="salt", limit=2)]
    assert paged == whole and len(whole) == 7


def test_relevance_ranks_a_bounded_pool_of_matches(catalog, monkeypatch):
    vendor, _ = catalog
    _set_settings(monkeypatch, search_rank_candidates=3)
    pool = all_pages(vendor, q="salt", limit=2)
    assert len(pool) == 3  # of 7 matches: the pages end with the pool
    assert len({p.external_id for p in pool}) == 3
    assert [p.score for p in pool] == sorted((p.score for p in pool), reverse=True)


def test_relevance_needs_search_text(catalog):
    vendor, _ = catalog
    with pytest.raises(InvalidInput) as raised:
        search(vendor, sort="relevance")
    assert raised.value.details == {"field": "sort"}


# --- filters --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "predicate"), [
    ({"category": "Bakery"}, lambda p: p["category"] == "Bakery"),
    ({"brand": "Nutty Farms"}, lambda p: p["brand"] == "Nutty Farms"),
    ({"diet": "vegetarian"}, lambda p: {"vegetarian", "vegan"} & set(p["dietary_tags"])),
    ({"diet": "vegan,gluten_free"}, lambda p: {"vegan", "gluten_free"} <= set(p["dietary_tags"])),
    ({"allergen_free": "milk"}, lambda p: p["allergens"] is not None and "milk" not in p["allergens"]),
    ({"allergen_free": "gluten,peanuts"},
     lambda p: p["allergens"] is not None and not {"gluten", "wheat", "peanuts"} & set(p["allergens"])),
    ({"protein_g_min": 6}, lambda p: p["protein_g"] >= 6),
    ({"sugar_g_max": 5, "sodium_mg_max": 150}, lambda p: p["sugar_g"] <= 5 and p["sodium_mg"] <= 150),
    ({"calories_min": 100, "calories_max": 160}, lambda p: 100 <= p["calories"] <= 160),
    ({"price_min": 3, "price_max": 5}, lambda p: p["price"] is not None and 3 <= p["price"] <= 5),
    ({"price_max": 100}, lambda p: p["price"] is not None),  # an unknown price is in no range
])
def test_filters_select_exactly_the_matching_products(catalog, params, predicate):
    vendor, _ = catalog
    assert external_ids(vendor, **params) == active(predicate)


def test_filters_combine_with_search_text(catalog):
    vendor, _ = catalog
    assert names(vendor, q="bread", diet="gluten_free") == ["Gluten-Free Bread"]
    assert names(vendor, q="snacks", brand="Snack Co", allergen_free="milk") == []
    assert names(vendor, q="chips", category="Snacks") == ["Salted Potato Chips"]


def test_retired_products_are_hidden_unless_asked_for(catalog):
    vendor, _ = catalog
    assert "p16" not in external_ids(vendor, q="juice")
    assert external_ids(vendor, status="retired") == {"p16"}


# --- sorting and pages --------------------------------------------------------------------------------------


def test_browse_sorts_by_name_without_search_text(catalog):
    vendor, _ = catalog
    found = names(vendor, limit=100)
    assert found == sorted(found, key=str.lower) and len(found) == 16


@pytest.mark.parametrize(("sort", "column", "descending"), [
    ("price_asc", "price", False), ("price_desc", "price", True),
    ("protein_g_desc", "protein_g", True), ("sodium_mg_asc", "sodium_mg", False),
])
def test_exact_sorts_put_unknown_values_last(catalog, sort, column, descending):
    vendor, _ = catalog
    products = all_pages(vendor, sort=sort, limit=3)
    values = [getattr(p, column) for p in products]
    known = [v for v in values if v is not None]
    assert known == sorted(known, reverse=descending)
    assert values[len(known):] == [None] * (len(values) - len(known))
    assert len(products) == 16


@pytest.mark.parametrize("params", [
    {"sort": "price_asc"}, {"sort": "price_desc"}, {"sort": "name"}, {"sort": "calories_desc"},
    {"q": "salt"}, {"diet": "vegetarian", "sort": "sugar_g_asc"},
])
def test_pages_have_no_duplicates_or_gaps_while_the_catalog_changes(catalog, params):
    vendor, _ = catalog
    before = {p.external_id for p in search(vendor, limit=100, **params).products}
    seen, cursor, round_ = [], None, 0
    while True:
        page = search(vendor, cursor=cursor, limit=3, **params)
        seen += [p.external_id for p in page.products]
        cursor = page.next_cursor
        if cursor is None:
            break
        round_ += 1
        # Between pages: new products land before and after the cursor, and existing ones are rewritten (new row
        # versions, elsewhere in storage) in fields that neither sort nor rank them.
        insert_products(vendor.id, [
            _product(f"new-{round_}-{n}", f"{name} salt snack {round_}", "Newcomer", "Snacks", price, calories, 5, 2,
                     100, ["vegetarian"], [], "salt", "salt")
            for n, (name, price, calories) in enumerate([("Aaa", 0.5, 5), ("Zzz", 99.0, 900), ("Mmm", 3.5, 150)])])
        with scoped_transaction(get_database().writer, vendor.id) as conn:
            conn.execute("UPDATE products SET serving_size_g = 30, updated_at = now() "
                         "WHERE vendor_id = %s AND external_id = ANY(%s)", (vendor.id, ["p03", "p07", "p13", "p15"]))
        wait_for_replica()
    counts = Counter(seen)
    assert not [key for key, count in counts.items() if count > 1], "a product came twice"
    assert before <= set(seen), "a product that was there all along was skipped"


@pytest.mark.parametrize("params", [
    {"q": "salt", "sort": "price_asc"}, {"q": "snack", "sort": "name"}, {"brand": "Snack Co", "sort": "price_desc"},
    {"q": "salt", "sort": "protein_g_desc"}, {"q": "salt", "sort": "sodium_mg_asc"},
])
def test_an_indexed_order_pages_the_same_whether_matches_are_collected_or_walked(catalog, monkeypatch, params):
    vendor, _ = catalog
    collected = [p.external_id for p in all_pages(vendor, limit=2, **params)]
    _set_settings(monkeypatch, search_sort_candidates=1)  # more matches than that: walk the index
    walked = [p.external_id for p in all_pages(vendor, limit=2, **params)]
    assert walked == collected and len(collected) >= 3


def test_a_walk_whose_budget_is_exactly_the_scope_answers(catalog, monkeypatch):
    vendor, _ = catalog
    priced = len(active(lambda p: p["price"] is not None))
    # Every priced product is walked and none is paleo; the one paleo product has no price, in the NULL section.
    _set_settings(monkeypatch, search_walk_budget=priced)
    assert names(vendor, sort="price_asc", diet="paleo") == ["Unsalted Mixed Nuts"]
    _set_settings(monkeypatch, search_walk_budget=priced - 1)
    with pytest.raises(InvalidInput) as raised:
        names(vendor, sort="price_asc", diet="paleo")
    assert raised.value.details == {"field": "sort"}


def test_a_walk_along_an_index_reads_a_bounded_number_of_products(catalog, monkeypatch):
    vendor, _ = catalog
    _set_settings(monkeypatch, search_sort_candidates=1, search_walk_budget=4)
    assert len(names(vendor, limit=3, sort="price_asc")) == 3  # dense: every product walked is a match
    with pytest.raises(InvalidInput) as raised:
        names(vendor, limit=3, sort="price_asc", diet="paleo")  # 1 of 16: not within 4 products, and no text
    assert raised.value.details == {"field": "sort"}


@pytest.fixture
def collected(monkeypatch):
    """The `until` of each collection of matches a search tries (None: not a band)."""
    calls = []
    collect = service.collected_page
    monkeypatch.setattr(service, "collected_page",
                        lambda *args, **kw: calls.append(kw.get("until")) or collect(*args, **kw))
    return calls


@pytest.mark.parametrize("sort", ["price_desc", "protein_g_desc", "sodium_mg_asc", "name"])
@pytest.mark.parametrize("sample", [7, 500])  # every match drawn (7 of 7), or fewer than asked for
def test_matches_far_along_the_order_are_sorted_band_by_band(catalog, monkeypatch, collected, sort, sample):
    vendor, _ = catalog
    expected = [p.external_id for p in all_pages(vendor, q="salt", sort=sort, limit=100)]
    # Too many of the 7 matches to collect them all, and a walk of 2 products finds too few of them for a page
    # (at the start of each of these orders sit products without salt): each page comes from a band.
    _set_settings(monkeypatch, search_sort_candidates=4, search_walk_budget=2, search_band_sample=sample)
    collected.clear()
    banded = [p.external_id for p in all_pages(vendor, q="salt", sort=sort, limit=2)]
    assert banded == expected and len(expected) == 7
    assert any(until is not None for until in collected)


def test_a_band_never_holds_more_matches_than_may_be_collected(catalog, monkeypatch, collected):
    vendor, _ = catalog
    _set_settings(monkeypatch, search_sort_candidates=4, search_walk_budget=2)
    with pytest.raises(InvalidInput) as raised:
        search(vendor, q="salt", sort="price_desc", limit=5)  # a page of 5 (and one more) from at most 4
    assert raised.value.details == {"field": "sort"}
    assert any(until is not None for until in collected)


@pytest.mark.parametrize(("sort", "key"), [
    ("relevance", 10**400),  # no float holds it
    ("relevance", 1e39), ("relevance", 1e-50),  # beyond a real, or zero in it
    ("name", "a\x00b"),  # PostgreSQL text holds no NUL
])
def test_a_forged_cursor_is_refused_naming_it(catalog, sort, key):
    vendor, _ = catalog
    raw = json.dumps({"s": sort, "k": key, "i": str(uuid.UUID(int=0))})
    with pytest.raises(InvalidInput) as raised:
        search(vendor, q="salt", sort=sort, cursor=base64.urlsafe_b64encode(raw.encode()).decode())
    assert raised.value.details == {"field": "cursor"}


def test_a_cursor_belongs_to_its_sort(catalog):
    vendor, _ = catalog
    cursor = search(vendor, sort="price_asc", limit=2).next_cursor
    for bad in (cursor, "garbage"):
        with pytest.raises(InvalidInput) as raised:
            search(vendor, sort="name", cursor=bad)
        assert raised.value.details == {"field": "cursor"}


# --- facets ---------------------------------------------------------------------------------------------------


def test_facets_count_the_matching_products(catalog):
    vendor, _ = catalog
    facets = search(vendor, facets="diet_tags,category", q="snacks").facets
    snacks = [p for p in CATALOG if p["category"] == "Snacks" and p["status"] == "active"]
    assert {c.value: c.count for c in facets.category} == {"Snacks": len(snacks)}
    diet_tags = {c.value: c.count for c in facets.diet_tags}
    assert diet_tags == {tag: len(external_ids(vendor, q="snacks", diet=tag)) for tag in diet_tags}
    assert set(diet_tags) >= {t for p in snacks for t in p["dietary_tags"]}
    assert diet_tags["vegetarian"] == len(snacks)  # 3 declared vegetarian and 2 vegan: what diet=vegetarian finds
    assert facets.exact and facets.counted == len(snacks)
    only_category = search(vendor, facets="category").facets
    assert only_category.diet_tags is None and sum(c.count for c in only_category.category) == 16


def test_facets_over_many_matches_count_a_capped_sample(catalog, monkeypatch):
    vendor, _ = catalog
    _set_settings(monkeypatch, search_facet_sample=5)
    facets = search(vendor, facets="category").facets
    assert facets.counted == 5 and not facets.exact
    assert sum(c.count for c in facets.category) == 5


# --- one product, and tenants -------------------------------------------------------------------------------


def test_a_product_is_found_by_the_vendors_own_id(catalog):
    vendor_a, vendor_b = catalog
    read = service.get_product(get_router(), vendor_a.id, "p01")
    assert read.product.id == entity_uuid(vendor_a.id, "p01") and read.product.brand == "Orchard Fresh"
    assert service.get_product(get_router(), vendor_b.id, "p01").product.brand == "Other Orchard"
    with pytest.raises(NotFound):
        service.get_product(get_router(), vendor_a.id, "b02")  # vendor B's


def test_a_vendor_never_sees_another_vendors_products(catalog):
    vendor_a, vendor_b = catalog
    assert names(vendor_a, q="secret pie") == []
    found_by_b = search(vendor_b, q="apples", facets="category")
    assert {p.id for p in found_by_b.products} == {entity_uuid(vendor_b.id, "p01"), entity_uuid(vendor_b.id, "b02")}
    assert found_by_b.facets.counted == 2
    assert {p.id for p in all_pages(vendor_a, sort="price_asc", limit=5)} == {
        entity_uuid(vendor_a.id, p["external_id"]) for p in CATALOG if p["status"] == "active"}
