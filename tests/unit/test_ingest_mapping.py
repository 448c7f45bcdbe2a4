from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nutrimatch.ingest.fields import IngestKind, Unit, conversion_factor, field_of, fields_of
from nutrimatch.ingest.mapping import SYNONYMS, Basis, ColumnMapping, map_headers, normalize_header


def only_column(header: str, kind: str = "products") -> ColumnMapping:
    return map_headers([header], kind).columns[0]


@pytest.mark.parametrize(
    ("header", "normalized"),
    [
        ("Energy (kcal)", "energy_kcal"),
        ("  Product-Name ", "product_name"),
        ("energy-kcal_100g", "energy_kcal_100g"),
        ("Protéines / 100 g", "proteines_100_g"),
        ("Vitamin B12 (µg)", "vitamin_b12_ug"),
        ("\ufeffSKU", "sku"),
        ("蛋白质 (克)", "蛋白质_克"),
        ("", ""),
    ],
)
def test_normalize_header(header: str, normalized: str) -> None:
    assert normalize_header(header) == normalized


@given(st.text())
def test_normalize_header_is_idempotent(header: str) -> None:
    assert normalize_header(normalize_header(header)) == normalize_header(header)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("SKU", "external_id"),
        ("product_id", "external_id"),
        ("GTIN", "external_id"),
        ("EAN", "external_id"),
        ("code", "external_id"),
        ("Product Name", "name"),
        ("productName", "name"),
        ("title", "name"),
        ("brands", "brand"),
        ("Price (EUR)", "price"),
        ("Kcal", "calories"),
        ("Energy (kcal)", "calories"),
        ("calories_kcal", "calories"),
        ("energy-kcal_100g", "calories"),
        ("Sodium (mg)", "sodium_mg"),
        ("salt_mg", "sodium_mg"),
        ("sodium_100g", "sodium_mg"),
        ("Protein per 100g", "protein_g"),
        ("proteins_100g", "protein_g"),
        ("saturated-fat_100g", "saturated_fat_g"),
        ("Dietary Fibre (g)", "fiber_g"),
        ("Total Carbohydrate", "carbs_g"),
        ("Added Sugars (g)", "added_sugar_g"),
        ("Serving size (g)", "serving_size_g"),
        ("ingredients_text", "ingredients"),
        ("Allergens", "allergens"),
        ("labels_en", "dietary_tags"),
    ],
)
def test_product_synonyms(header: str, field: str) -> None:
    assert only_column(header).field == field


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("e-mail", "email"),
        ("Mail", "email"),
        ("Email Address", "email"),
        ("Full Name", "name"),
        ("customer name", "name"),
        ("Language", "locale"),
        ("lang", "locale"),
        ("id", "external_id"),
        ("customer_id", "external_id"),
        ("Member ID", "external_id"),
    ],
)
def test_customer_synonyms(header: str, field: str) -> None:
    assert only_column(header, "customers").field == field


@pytest.mark.parametrize("kind", list(IngestKind))
def test_every_synonym_names_one_field_of_its_kind(kind: IngestKind) -> None:
    owners: dict[str, set[str]] = {}
    for field, names in SYNONYMS[kind].items():
        field_of(kind, field)
        for name in names:
            assert normalize_header(name) == name
            owners.setdefault(name.replace("_", ""), set()).add(field)
    assert {name: fields for name, fields in owners.items() if len(fields) > 1} == {}
    assert set(SYNONYMS[kind]) == {target.name for target in fields_of(kind)}


@pytest.mark.parametrize(
    ("header", "unit", "factor", "from_header"),
    [
        ("Kcal", Unit.KCAL, 1.0, True),
        ("Energy (kJ)", Unit.KJ, 1 / 4.184, True),
        ("kJ", Unit.KJ, 1 / 4.184, True),
        ("Calories", Unit.KCAL, 1.0, False),
        ("Sodium (mg)", Unit.MG, 1.0, True),
        ("Sodium (g)", Unit.G, 1000.0, True),
        ("Sodium", Unit.MG, 1.0, False),
        ("Potassium (mcg)", Unit.MCG, 0.001, True),
        ("Protein (mg)", Unit.MG, 0.001, True),
        ("Serving size (g)", Unit.G, 1.0, True),
    ],
)
def test_units_and_factors(header: str, unit: Unit, factor: float, from_header: bool) -> None:
    column = only_column(header)

    assert (column.unit, column.unit_from_header) == (unit, from_header)
    assert column.factor == pytest.approx(factor)


@pytest.mark.parametrize(
    ("header", "unit", "factor"),
    [
        ("energy_100g", Unit.KJ, 1 / 4.184),  # Open Food Facts: energy in kJ unless the name says kcal
        ("energy-kcal_100g", Unit.KCAL, 1.0),
        ("energy-kj_100g", Unit.KJ, 1 / 4.184),
        ("sodium_100g", Unit.G, 1000.0),  # Open Food Facts: every mass in grams
        ("proteins_100g", Unit.G, 1.0),
        ("sodium_serving", Unit.G, 1000.0),
    ],
)
def test_open_food_facts_units(header: str, unit: Unit, factor: float) -> None:
    column = only_column(header)

    assert column.unit == unit
    assert column.factor == pytest.approx(factor)


@pytest.mark.parametrize(
    ("header", "factor"),
    [("salt_100g", 400.0), ("Salt (g)", 400.0), ("salt_mg", 0.4), ("Salt", 0.4)],
)
def test_salt_becomes_sodium(header: str, factor: float) -> None:
    column = only_column(header)

    assert (column.field, column.from_salt) == ("sodium_mg", True)
    assert column.factor == pytest.approx(factor)


@pytest.mark.parametrize(
    ("header", "basis"),
    [
        ("Protein", Basis.PER_SERVING),
        ("Protein per serving", Basis.PER_SERVING),
        ("Protein per 100g", Basis.PER_100G),
        ("Protein (g/100 g)", Basis.PER_100G),
        ("proteins_100g", Basis.PER_100G),
        ("Sodium per 100", Basis.PER_100G),
        ("Sugar per 100 ml", Basis.PER_100ML),
        ("energy-kcal_serving", Basis.PER_SERVING),
    ],
)
def test_basis(header: str, basis: Basis) -> None:
    assert only_column(header).basis == basis


def test_basis_is_recorded_per_column() -> None:
    mapping = map_headers(["sku", "name", "Calories per serving", "Protein per 100 g"], "products")

    assert mapping.by_field["calories"].basis == Basis.PER_SERVING
    assert mapping.by_field["protein_g"].basis == Basis.PER_100G


def test_non_nutrients_have_no_unit_or_basis() -> None:
    column = only_column("Product Name")

    assert (column.unit, column.basis, column.factor) == (None, None, 1.0)
    assert only_column("Serving size").basis is None


@pytest.mark.parametrize("header", ["Price per 100 g", "Protein (kcal)", "Energy (kJ/kcal)", "Name (mg)"])
def test_headers_whose_unit_or_basis_does_not_fit_are_not_mapped(header: str) -> None:
    assert only_column(header).field is None


def test_serving_alone_is_the_serving_size_not_a_basis() -> None:
    assert only_column("Serving").field == "serving_size_g"


def test_unmapped_columns_are_listed() -> None:
    mapping = map_headers(["sku", "Name", "Warehouse", "Shelf life"], "products")

    assert mapping.unmapped == ("Warehouse", "Shelf life")
    assert [column.field for column in mapping.columns] == ["external_id", "name", None, None]


def test_duplicate_prefers_the_header_stating_the_canonical_unit() -> None:
    mapping = map_headers(["code", "product_name", "energy_100g", "energy-kcal_100g"], "products")

    assert mapping.by_field["calories"].header == "energy-kcal_100g"
    assert [(column.header, column.field) for column in mapping.duplicates] == [("energy_100g", "calories")]
    assert mapping.columns[2].field is None
    assert mapping.unmapped == ()


def test_duplicate_prefers_the_first_when_nothing_else_tells_them_apart() -> None:
    mapping = map_headers(["sku", "Name", "Title"], "products")

    assert mapping.by_field["name"].index == 1
    assert [column.header for column in mapping.duplicates] == ["Title"]


def test_sodium_is_preferred_to_salt() -> None:
    mapping = map_headers(["code", "product_name", "salt_100g", "sodium_100g"], "products")

    assert mapping.by_field["sodium_mg"].header == "sodium_100g"
    assert [column.header for column in mapping.duplicates] == ["salt_100g"]


def test_learned_mapping_overrides_synonyms() -> None:
    learned = {"Artikelnummer": "external_id", "bezeichnung": "name", "Item": "brand", "Energie (kJ)": "calories"}

    mapping = map_headers(["Artikelnummer", "Bezeichnung", "ITEM", "Energie (kJ)"], "products", learned)

    assert mapping.ok
    assert [column.field for column in mapping.columns] == ["external_id", "name", "brand", "calories"]
    assert all(column.learned for column in mapping.columns)
    energy = mapping.by_field["calories"]
    assert (energy.unit, energy.unit_from_header) == (Unit.KJ, True)
    assert energy.factor == pytest.approx(1 / 4.184)


def test_learned_column_wins_over_a_synonym_column_for_the_same_field() -> None:
    mapping = map_headers(["sku", "Name", "Bezeichnung"], "products", {"bezeichnung": "name"})

    assert mapping.by_field["name"].header == "Bezeichnung"
    assert [column.header for column in mapping.duplicates] == ["Name"]


def test_learned_salt_column_still_converts_salt() -> None:
    column = map_headers(["salt_100g"], "products", {"salt_100g": "sodium_mg"}).columns[0]

    assert (column.field, column.learned, column.from_salt) == ("sodium_mg", True, True)
    assert column.factor == pytest.approx(400.0)


def test_a_learned_none_ignores_the_column_though_a_synonym_names_it() -> None:
    mapping = map_headers(["SKU", "Name", "Brand", "Notes"], "products", {"brand": None})

    assert mapping.ok
    assert "brand" not in mapping.by_field
    brand = mapping.columns[2]
    assert (brand.field, brand.learned) == (None, True)
    assert mapping.unmapped == ("Notes",)


def test_a_required_column_learned_as_ignored_is_missing() -> None:
    mapping = map_headers(["SKU", "Name"], "products", {"SKU": None})

    assert mapping.missing_required == ("external_id",)


def test_learned_mapping_to_an_unknown_field_is_an_error() -> None:
    with pytest.raises(ValueError, match="calories"):
        map_headers(["kcal"], "customers", {"kcal": "calories"})


def test_missing_required_message_lists_found_and_expected() -> None:
    mapping = map_headers(["SKU", "Kcal", "Sodium (mg)"], "products")

    assert not mapping.ok
    assert mapping.missing_required == ("name",)
    assert mapping.message is not None
    assert mapping.message.startswith(
        "Missing required column(s) for products: name. Found columns: SKU, Kcal, Sodium (mg). "
        "Expected one of: name, product_name, title, "
    )


def test_message_for_several_missing_fields_says_which_names_are_for_which() -> None:
    mapping = map_headers(["Kcal"], "products")

    assert mapping.missing_required == ("external_id", "name")
    assert mapping.message is not None
    assert "for external_id one of: external_id, id, sku," in mapping.message
    assert "; for name one of: name, product_name," in mapping.message


def test_message_of_a_long_header_row_is_bounded() -> None:
    mapping = map_headers([f"column {number}" for number in range(120)], "customers")

    assert mapping.message is not None
    assert "(and 70 more)" in mapping.message
    assert "column 50" not in mapping.message


def test_no_message_when_nothing_required_is_missing() -> None:
    mapping = map_headers(["Member ID", "E-Mail"], "customers")

    assert mapping.ok
    assert mapping.message is None
    assert mapping.missing_required == ()


def test_open_food_facts_export_header() -> None:
    headers = [
        "code", "url", "product_name", "brands", "categories", "ingredients_text", "allergens", "labels",
        "serving_size", "energy-kj_100g", "energy-kcal_100g", "energy_100g", "fat_100g", "saturated-fat_100g",
        "carbohydrates_100g", "sugars_100g", "added-sugars_100g", "fiber_100g", "proteins_100g", "salt_100g",
        "sodium_100g", "potassium_100g",
    ]  # fmt: skip

    mapping = map_headers(headers, "products")

    assert mapping.ok
    assert mapping.unmapped == ("url",)
    assert {field: column.header for field, column in mapping.by_field.items()} == {
        "external_id": "code",
        "name": "product_name",
        "brand": "brands",
        "category": "categories",
        "ingredients": "ingredients_text",
        "allergens": "allergens",
        "dietary_tags": "labels",
        "serving_size_g": "serving_size",
        "calories": "energy-kcal_100g",
        "fat_g": "fat_100g",
        "saturated_fat_g": "saturated-fat_100g",
        "carbs_g": "carbohydrates_100g",
        "sugar_g": "sugars_100g",
        "added_sugar_g": "added-sugars_100g",
        "fiber_g": "fiber_100g",
        "protein_g": "proteins_100g",
        "sodium_mg": "sodium_100g",
        "potassium_mg": "potassium_100g",
    }
    assert {column.header for column in mapping.duplicates} == {"energy-kj_100g", "energy_100g", "salt_100g"}
    assert mapping.by_field["potassium_mg"].factor == pytest.approx(1000.0)
    assert {column.basis for column in mapping.by_field.values() if column.basis} == {Basis.PER_100G}


def test_conversion_factor_refuses_to_cross_dimensions() -> None:
    assert conversion_factor(Unit.KCAL, Unit.G) is None
    assert conversion_factor(Unit.MG, Unit.G) == pytest.approx(0.001)


def test_fields_have_the_documented_types_and_units() -> None:
    assert [target.name for target in fields_of("products") if target.required] == ["external_id", "name"]
    assert [target.name for target in fields_of("customers") if target.required] == ["external_id"]
    assert field_of("products", "calories").unit == Unit.KCAL
    assert field_of("products", "sodium_mg").unit == Unit.MG
    assert field_of("products", "allergens").type == "text_list"
    assert field_of("products", "serving_size_g").nutrient is False
    with pytest.raises(KeyError):
        field_of("customers", "calories")
