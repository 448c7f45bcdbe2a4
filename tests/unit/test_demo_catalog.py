"""The synthetic product catalog: deterministic, consistent (allergens, tags, panels), varied, defects on demand."""

from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from nutrimatch.demo.catalog import (
    DEFECTS,
    NO_ALLERGENS,
    PRODUCT_COLUMNS,
    generate_products,
    products_csv_bytes,
    write_products_csv,
)
from nutrimatch.vocabulary import normalize_allergens, normalize_diet_tags

CANONICAL_ALLERGENS = {
    "milk", "eggs", "fish", "crustacean_shellfish", "tree_nuts", "peanuts", "wheat", "soybeans", "sesame",
    "gluten", "molluscs",
}  # fmt: skip
ANIMAL_ALLERGENS = {"milk", "eggs", "fish", "crustacean_shellfish", "molluscs"}
MEAT_WORDS = re.compile(r"\b(beef|pork|chicken|turkey|lamb|duck|bison|gelatin)\b", re.IGNORECASE)
NUMBER = re.compile(r"^\d+(\.\d{1,2})?$")
NUMERIC_COLUMNS = ("price", "serving_size_g", "calories", "protein_g", "carbs_g", "fat_g", "saturated_fat_g",
                   "fiber_g", "sugar_g", "added_sugar_g", "sodium_mg", "potassium_mg")
# Dropped by full-text search configurations (PostgreSQL "english"), so not counted as vocabulary.
STOP_WORDS = {"a", "an", "and", "the", "of", "with", "in", "from", "or", "by", "for", "to", "on", "at", "it"}


@pytest.fixture(scope="module")
def products() -> list[dict[str, str]]:
    return list(generate_products(20_000, seed=5))


def _parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_same_arguments_give_the_same_bytes_and_a_row_depends_only_on_seed_and_number(tmp_path: Path) -> None:
    data = products_csv_bytes(300, seed=3)
    assert data == products_csv_bytes(300, seed=3)
    assert data != products_csv_bytes(300, seed=4)
    target = tmp_path / "products.csv"
    assert write_products_csv(target, 300, seed=3) == []
    assert target.read_bytes() == data
    whole = list(generate_products(40, seed=3))
    assert list(generate_products(15, seed=3, start=25)) == whole[25:]


def test_header_row_count_and_external_ids() -> None:
    rows = _parse(products_csv_bytes(1_000))
    assert tuple(rows[0]) == PRODUCT_COLUMNS
    assert len(rows) == 1_001
    assert {len(row) for row in rows} == {len(PRODUCT_COLUMNS)}
    assert [row[0] for row in rows[1:4]] == ["SKU-00000001", "SKU-00000002", "SKU-00000003"]
    assert next(generate_products(1, start=41))["external_id"] == "SKU-00000042"


def test_a_binary_stream_is_written_and_left_open() -> None:
    stream = io.BytesIO()
    write_products_csv(stream, 10)
    assert not stream.closed
    assert stream.getvalue() == products_csv_bytes(10)
    assert b"\r\n" not in stream.getvalue()


def test_numbers_and_nutrition_panels_are_plausible(products: list[dict[str, str]]) -> None:
    for product in products:
        assert all(NUMBER.match(product[column]) for column in NUMERIC_COLUMNS), product
        assert product["currency"] == "USD"
        value = {column: float(product[column]) for column in NUMERIC_COLUMNS}
        assert value["saturated_fat_g"] <= value["fat_g"]
        assert value["added_sugar_g"] <= value["sugar_g"] <= value["carbs_g"]
        assert value["fiber_g"] <= value["carbs_g"]
        assert value["sodium_mg"].is_integer() and value["potassium_mg"].is_integer()
        assert value["price"] > 0 and value["serving_size_g"] > 0
        energy = 4 * value["protein_g"] + 4 * value["carbs_g"] + 9 * value["fat_g"]
        assert abs(value["calories"] - energy) <= 0.15 * energy + 20, product  # label rounding only


def test_typical_panels_match_the_category(products: list[dict[str, str]]) -> None:
    def median(category: str, column: str) -> float:
        values = sorted(float(p[column]) for p in products if p["category"] == category)
        return values[len(values) // 2]

    assert 130 <= median("chips", "calories") <= 190 and 7 <= median("chips", "fat_g") <= 13
    assert 120 <= median("chips", "sodium_mg") <= 230
    assert 11 <= median("yogurt", "protein_g") <= 18 and 80 <= median("yogurt", "calories") <= 190
    assert median("fresh produce", "sodium_mg") < 140 and median("soups", "sodium_mg") > 400


def test_allergens_follow_ingredients_and_tags_never_contradict(products: list[dict[str, str]]) -> None:
    unknown = 0
    for product in products:
        raw = product["allergens"]
        unknown += raw == ""
        allergens, unrecognised = normalize_allergens(raw)
        assert not unrecognised and set(raw.split(";")) <= CANONICAL_ALLERGENS | {NO_ALLERGENS, ""}, raw
        assert (raw == NO_ALLERGENS) == (not allergens and raw != "")
        tags, unknown_tags = normalize_diet_tags(product["dietary_tags"])
        assert not unknown_tags
        ingredients = product["ingredients"]
        if "wheat" in allergens:
            assert "gluten" in allergens
        if raw:  # a known allergen list must agree with the claims
            assert not ("vegan" in tags and allergens & ANIMAL_ALLERGENS), product
            assert not ("vegetarian" in tags and allergens & {"fish", "crustacean_shellfish", "molluscs"})
            assert not ("gluten_free" in tags and allergens & {"wheat", "gluten"})
            assert not ("dairy_free" in tags and "milk" in allergens)
            assert not ("nut_free" in tags and allergens & {"peanuts", "tree_nuts"})
        if tags & {"vegan", "vegetarian"}:
            assert not MEAT_WORDS.search(ingredients), product
        if "wheat" in ingredients.lower() and raw:
            assert {"wheat", "gluten"} <= allergens, product
        panel = {column: float(product[column]) for column in NUMERIC_COLUMNS}
        assert "low_sodium" not in tags or panel["sodium_mg"] <= 140
        assert "low_sugar" not in tags or panel["sugar_g"] <= 5
        assert "high_protein" not in tags or panel["protein_g"] >= 10
        assert "high_fiber" not in tags or panel["fiber_g"] >= 5
        assert "keto" not in tags or panel["carbs_g"] <= 5
    assert 0.02 <= unknown / len(products) <= 0.04
    tag_counts = Counter(tag for product in products for tag in product["dietary_tags"].split(";") if tag)
    assert {"vegan", "organic", "kosher", "halal", "keto", "nut_free", "high_fiber"} <= set(tag_counts)


def test_categories_brands_and_text_have_realistic_variety(products: list[dict[str, str]]) -> None:
    categories = Counter(product["category"] for product in products)
    assert len(categories) >= 28 and max(categories.values()) < 0.08 * len(products)
    brands = Counter(product["brand"] for product in products)
    assert len(brands) > 500
    top_brands = brands.most_common(10)
    assert top_brands[0][1] > 10 * sorted(brands.values())[len(brands) // 2]  # a few big brands, a long tail
    rows_with_word: Counter[str] = Counter()
    for product in products:
        assert product["name"] and product["description"].endswith(".")
        text = f"{product['name']} {product['description']}".lower()
        rows_with_word.update(set(re.findall(r"[^\W_]+", text)) - STOP_WORDS)
    assert len(rows_with_word) >= 2_000
    assert rows_with_word.most_common(1)[0][1] < 0.15 * len(products)
    assert sum(1 for count in rows_with_word.values() if count <= 5) > 0.2 * len(rows_with_word)  # long tail


def test_bad_rows_have_exactly_one_defect_each_and_the_rest_are_clean() -> None:
    clean_rows = _parse(products_csv_bytes(10_000, seed=9))[1:]
    data = products_csv_bytes(10_000, seed=9, bad_fraction=0.01)
    stream = io.BytesIO()
    bad = write_products_csv(stream, 10_000, seed=9, bad_fraction=0.01)
    assert stream.getvalue() == data
    assert len(bad) == 100 and bad == sorted(set(bad))
    rows = _parse(data)[1:]
    assert {len(row) for row in rows} == {len(PRODUCT_COLUMNS)}
    column = {name: index for index, name in enumerate(PRODUCT_COLUMNS)}
    seen_ids: set[str] = set()
    defects: Counter[str] = Counter()
    for number, (row, clean) in enumerate(zip(rows, clean_rows, strict=True), start=1):
        changed = [PRODUCT_COLUMNS[index] for index, (a, b) in enumerate(zip(row, clean, strict=True)) if a != b]
        if number not in bad:
            assert not changed and row[0] not in seen_ids
            assert row[column["name"]] and not normalize_allergens(row[column["allergens"]])[1]
            assert all(NUMBER.match(row[column[name]]) for name in NUMERIC_COLUMNS)
        else:
            assert len(changed) == 1, (number, changed)
            field, value = changed[0], row[column[changed[0]]]
            if field == "calories":
                defects["negative_calories"] += 1
                assert value.startswith("-") and float(value) < 0
            elif field == "protein_g":
                defects["non_numeric_protein"] += 1
                assert not NUMBER.match(value)
            elif field == "allergens":
                defects["unknown_allergen"] += 1
                assert normalize_allergens(value)[1] == ["moonrock"]
            elif field == "name":
                defects["empty_name"] += 1
                assert value == ""
            elif field == "external_id":
                defects["duplicate_id"] += 1
                assert value in seen_ids
            else:
                defects["sodium_in_grams"] += 1
                assert field == "sodium_mg" and 0 < float(value) < 5 and not float(value).is_integer()
        seen_ids.add(row[0])
    assert set(defects) == set(DEFECTS) and min(defects.values()) >= 15


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="bad_fraction"):
        products_csv_bytes(10, bad_fraction=1.5)
    with pytest.raises(ValueError, match="negative"):
        list(generate_products(-1))
    assert products_csv_bytes(0) == (",".join(PRODUCT_COLUMNS) + "\n").encode()


def test_100k_rows_are_written_in_under_5_seconds(tmp_path: Path) -> None:
    began = time.perf_counter()
    write_products_csv(tmp_path / "products.csv", 100_000, seed=1)
    assert time.perf_counter() - began < 5.0
    assert (tmp_path / "products.csv").stat().st_size > 100_000 * 150
