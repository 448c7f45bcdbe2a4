"""Search parameters: validation, filters and keyset cursors (no database)."""

import base64
import json
import uuid
from decimal import Decimal

import pytest
from pydantic import ValidationError

from nutrimatch.errors import InvalidInput
from nutrimatch.search.cursor import Cursor, KeyKind, decode_cursor, encode_cursor
from nutrimatch.search.models import Facet, SearchRequest
from nutrimatch.search.query import SORTS, build_filters

VENDOR = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _invalid_field(**params):
    with pytest.raises(ValidationError) as raised:
        SearchRequest(**params)
    return [error["loc"][0] for error in raised.value.errors()]


def test_diet_tags_and_allergens_are_normalised_through_the_vocabularies():
    request = SearchRequest(diet="Vegan, GF", allergen_free=["Peanuts", "dairy"], facets="diet_tags,category")
    assert request.diet == {"vegan", "gluten_free"}
    assert request.allergen_free == {"peanuts", "milk"}
    assert request.facets == {Facet.DIET_TAGS, Facet.CATEGORY}


@pytest.mark.parametrize("asked", ["all", "true", "True"])
def test_all_facets_may_be_asked_for_at_once(asked):
    assert SearchRequest(facets=asked).facets == set(Facet)
    assert SearchRequest().facets == set()


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 101}, "limit"),
    ({"limit": 0}, "limit"),
    ({"diet": "vegan,carnivore"}, "diet"),
    ({"allergen_free": "kryptonite"}, "allergen_free"),
    ({"facets": "brand"}, "facets"),
    ({"sort": "popularity"}, "sort"),
    ({"sugar_g_max": -1}, "sugar_g_max"),
    ({"status": "deleted"}, "status"),
    ({"q": "x" * 201}, "q"),
])
def test_bad_parameters_name_their_field(params, field):
    assert _invalid_field(**params) == [field]


def test_a_range_whose_minimum_exceeds_its_maximum_is_refused_naming_the_minimum():
    with pytest.raises(InvalidInput) as raised:
        build_filters(VENDOR, SearchRequest(calories_min=300, calories_max=100))
    assert raised.value.details == {"field": "calories_min"}


def test_a_diet_is_met_by_tags_that_imply_it_and_an_allergen_is_avoided_with_what_contains_it():
    filters = build_filters(VENDOR, SearchRequest(diet="vegetarian", allergen_free="gluten"))
    assert "vegan" in filters.params["diet_0"] and "vegetarian" in filters.params["diet_0"]
    assert {"gluten", "wheat"} <= set(filters.params["avoid"])
    assert any("allergens IS NOT NULL" in clause for clause, _ in filters.checks)


def test_values_are_parameters_never_sql_text():
    filters = build_filters(VENDOR, SearchRequest(brand="x' OR 1=1 --", category="Snacks", price_max=3))
    assert "OR 1=1" not in filters.sql
    assert filters.params["brand"] == "x' OR 1=1 --"


@pytest.mark.parametrize(("sort", "kind", "key"), [
    ("name", KeyKind.TEXT, "greek yogurt plain"),
    ("price_asc", KeyKind.NUMERIC, Decimal("3.49")),
    ("price_desc", KeyKind.NUMERIC, None),  # in the products without a price
    ("relevance", KeyKind.SCORE, 0.123456789),
])
def test_a_cursor_round_trips_its_sort_key_exactly(sort, kind, key):
    cursor = Cursor(sort, key, uuid.uuid4())
    assert decode_cursor(encode_cursor(cursor), sort, kind) == cursor


@pytest.mark.parametrize("token", ["not-base64!", "e30", encode_cursor(Cursor("name", "a", VENDOR))])
def test_a_foreign_or_broken_cursor_is_refused(token):
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(token, "price_asc", KeyKind.NUMERIC)
    assert raised.value.details == {"field": "cursor"}


def _forged(sort, key, id_):
    raw = json.dumps({"s": sort, "k": key, "i": id_})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(("sort", "kind", "key", "id_"), [
    ("relevance", KeyKind.SCORE, 10**400, str(VENDOR)),
    ("relevance", KeyKind.SCORE, 1e39, str(VENDOR)),
    ("relevance", KeyKind.SCORE, 1e-50, str(VENDOR)),
    ("relevance", KeyKind.SCORE, float("nan"), str(VENDOR)),
    ("name", KeyKind.TEXT, "a\x00b", str(VENDOR)),
    ("name", KeyKind.TEXT, "a", 123),
    ("name", KeyKind.TEXT, "a", ["x"]),
])
def test_a_forged_cursor_is_refused_naming_it(sort, kind, key, id_):
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(_forged(sort, key, id_), sort, kind)
    assert raised.value.details == {"field": "cursor"}


@pytest.mark.parametrize("score", [0.0, 1e-45, 3.4e38])
def test_a_relevance_cursor_holds_any_score_a_real_can(score):
    assert decode_cursor(_forged("relevance", score, str(VENDOR)), "relevance", KeyKind.SCORE).key == score


def test_every_sort_has_its_index_in_the_migrations():
    from nutrimatch.db.migrations import discover
    from nutrimatch.local.stack import MIGRATIONS_DIR

    every_sql = "\n".join(m.sql for m in discover(MIGRATIONS_DIR))
    for spec in SORTS.values():
        assert f"ON products ({spec.expression.replace('p.', '')}, id)" in every_sql, spec.expression
