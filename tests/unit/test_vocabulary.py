"""The controlled vocabularies: synonyms, the normalisation rule SQL mirrors, bit indexes, implications."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nutrimatch.vocabulary import (
    ALLERGENS,
    DIET_TAGS,
    MAX_BIT_INDEX,
    Term,
    Vocabulary,
    implication_rows,
    normalize_allergens,
    normalize_diet_tags,
    normalize_token,
    synonym_rows,
)

US_MAJOR_9 = {
    "milk", "eggs", "fish", "crustacean_shellfish", "tree_nuts", "peanuts", "wheat", "soybeans", "sesame",
}  # fmt: skip
EU_EXTRA = {"gluten", "mustard", "celery", "lupin", "molluscs", "sulphites"}

# Persisted in feature snapshots: this table may only ever grow. A failure here means a renumbering.
PINNED_ALLERGEN_BITS = {
    "milk": 0, "eggs": 1, "fish": 2, "crustacean_shellfish": 3, "tree_nuts": 4, "peanuts": 5, "wheat": 6,
    "soybeans": 7, "sesame": 8, "gluten": 9, "mustard": 10, "celery": 11, "lupin": 12, "molluscs": 13,
    "sulphites": 14,
}  # fmt: skip
PINNED_DIET_TAG_BITS = {
    "vegan": 0, "vegetarian": 1, "gluten_free": 2, "dairy_free": 3, "keto": 4, "paleo": 5, "halal": 6,
    "kosher": 7, "low_sodium": 8, "low_sugar": 9, "high_protein": 10, "high_fiber": 11, "organic": 12,
    "nut_free": 13, "plant_based": 14, "lactose_free": 15,
}  # fmt: skip


def test_allergens_cover_the_us_major_nine_and_the_eu_fourteen() -> None:
    assert set(ALLERGENS) >= US_MAJOR_9 | EU_EXTRA


def test_diet_tags_cover_the_agreed_list() -> None:
    expected = {
        "vegan", "vegetarian", "gluten_free", "dairy_free", "keto", "paleo", "halal", "kosher", "low_sodium",
        "low_sugar", "high_protein", "high_fiber", "organic", "nut_free",
    }  # fmt: skip
    assert expected <= set(DIET_TAGS)


@pytest.mark.parametrize(
    ("vocabulary", "pinned"), [(ALLERGENS, PINNED_ALLERGEN_BITS), (DIET_TAGS, PINNED_DIET_TAG_BITS)]
)
def test_bit_indexes_are_pinned_and_fit_a_signed_bigint(vocabulary: Vocabulary, pinned: dict[str, int]) -> None:
    for code, bit in pinned.items():
        assert vocabulary[code].bit == bit
    bits = [term.bit for term in vocabulary.values()]
    assert len(set(bits)) == len(bits)
    assert max(bits) <= MAX_BIT_INDEX == 62
    assert vocabulary.bitmask(vocabulary) < 2**63


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Tree-Nuts!! ", "tree nuts"),
        ("Milk_Protein", "milk protein"),
        ("SULPHUR   DIOXIDE (E220)", "sulphur dioxide e220"),
        ("crème", "cr me"),  # non-ASCII letters separate words, exactly as the SQL regexp does
        ("---", ""),
    ],
)
def test_normalize_token_rule(raw: str, expected: str) -> None:
    assert normalize_token(raw) == expected


@given(st.text())
def test_normalize_token_is_idempotent_and_emits_only_single_spaced_lowercase_ascii(raw: str) -> None:
    token = normalize_token(raw)
    assert normalize_token(token) == token
    assert re.fullmatch(r"([a-z0-9]+( [a-z0-9]+)*)?", token)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("dairy", "milk"), ("Lactose", "milk"), ("milk protein", "milk"), ("WHEY", "milk"), ("casein", "milk"),
        ("egg", "eggs"), ("Eggs", "eggs"),
        ("shellfish", "crustacean_shellfish"), ("shrimp", "crustacean_shellfish"), ("Crab", "crustacean_shellfish"),
        ("lobster", "crustacean_shellfish"), ("prawns", "crustacean_shellfish"),
        ("almond", "tree_nuts"), ("Cashews", "tree_nuts"), ("walnut", "tree_nuts"), ("hazelnuts", "tree_nuts"),
        ("pecan", "tree_nuts"), ("Pistachios", "tree_nuts"), ("tree nut", "tree_nuts"), ("TREE_NUTS", "tree_nuts"),
        ("peanut", "peanuts"), ("groundnut", "peanuts"), ("Ground-nuts", "peanuts"),
        ("soy", "soybeans"), ("soya", "soybeans"), ("soybean", "soybeans"), ("Soy Beans", "soybeans"),
        ("sesame seeds", "sesame"), ("Sesame-Seed", "sesame"),
        ("wheat flour", "wheat"), ("spelt", "wheat"),
        ("barley", "gluten"), ("Oats", "gluten"),
        ("mollusks", "molluscs"), ("oysters", "molluscs"),
        ("sulfites", "sulphites"), ("E-220", "sulphites"), ("e228", "sulphites"), ("SO2", "sulphites"),
        ("anchovies", "fish"),
    ],
)  # fmt: skip
def test_allergen_synonyms(raw: str, code: str) -> None:
    assert normalize_allergens(raw) == (frozenset({code}), [])


def test_no_stemming_or_fuzzy_matching_only_listed_spellings_count() -> None:
    assert normalize_allergens("peanutss; almond milk") == (frozenset(), ["peanutss", "almond milk"])


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("gluten-free", "gluten_free"), ("GF", "gluten_free"), ("Gluten Free", "gluten_free"),
        ("plant-based", "plant_based"), ("Vegan", "vegan"), ("veggie", "vegetarian"),
        ("dairy free", "dairy_free"), ("high fibre", "high_fiber"), ("low salt", "low_sodium"),
        ("sugar-free", "low_sugar"), ("nut-free", "nut_free"), ("Bio", "organic"), ("ketogenic", "keto"),
        ("lactose-free", "lactose_free"),
    ],
)  # fmt: skip
def test_diet_tag_synonyms(raw: str, code: str) -> None:
    assert normalize_diet_tags(raw) == (frozenset({code}), [])


def test_plant_based_and_lactose_free_are_not_vegan_or_dairy_free() -> None:
    assert normalize_diet_tags("plant-based, lactose-free")[0] == {"plant_based", "lactose_free"}


def test_delimited_string_is_split_on_commas_semicolons_pipes_and_newlines() -> None:
    assert normalize_allergens("Milk; Soy, tree nuts|eggs\nsesame") == (
        frozenset({"milk", "soybeans", "tree_nuts", "eggs", "sesame"}),
        [],
    )


def test_iterable_input_whose_items_may_themselves_be_delimited() -> None:
    assert normalize_allergens(["Peanut", "Dairy; whey", "  "]) == (frozenset({"peanuts", "milk"}), [])


def test_unknown_tokens_are_reported_once_in_first_seen_order_never_dropped() -> None:
    codes, unknown = normalize_allergens("milk, Unicorn Dust, kiwi; unicorn dust , Kiwi")
    assert codes == {"milk"}
    assert unknown == ["Unicorn Dust", "kiwi"]


def test_empty_markers_and_empty_tokens_declare_nothing() -> None:
    assert normalize_allergens("None") == (frozenset(), [])
    assert normalize_diet_tags("N/A") == (frozenset(), [])
    assert normalize_allergens("milk,, ;") == (frozenset({"milk"}), [])
    assert normalize_diet_tags([]) == (frozenset(), [])


@pytest.mark.parametrize("raw", ["?", "-", "花生", "арахис"])
def test_a_token_without_ascii_letters_is_unknown_never_a_declaration_of_none(raw: str) -> None:
    assert normalize_allergens(raw) == (frozenset(), [raw])
    assert normalize_allergens(f"milk, {raw}") == (frozenset({"milk"}), [raw])


@pytest.mark.parametrize("marker", ["N/A", "na", "null", "NIL", "not applicable"])
def test_a_marker_that_may_mean_not_available_is_no_declaration_of_allergens(marker: str) -> None:
    assert normalize_allergens(marker) == (frozenset(), [marker])
    assert normalize_diet_tags(marker) == (frozenset(), [])


def test_a_cell_of_separators_alone_is_unknown() -> None:
    assert normalize_allergens(",, ;") == (frozenset(), [",, ;"])


def test_seitan_and_triticale_are_wheat() -> None:
    assert normalize_allergens("seitan; triticale") == (frozenset({"wheat"}), [])
    assert "wheat" in ALLERGENS.codes_implying(["wheat"]) and "gluten" in ALLERGENS.implied_closure(["wheat"])


def test_synonym_rows_are_normalised_unique_and_agree_with_python_normalisation() -> None:
    rows = list(synonym_rows())
    assert {kind for kind, _, _ in rows} == {"allergen", "diet_tag"}
    assert len({(kind, synonym) for kind, synonym, _ in rows}) == len(rows)
    vocabularies = {"allergen": ALLERGENS, "diet_tag": DIET_TAGS}
    for kind, synonym, code in rows:
        assert normalize_token(synonym) == synonym
        assert vocabularies[kind].normalize(synonym) == (frozenset({code}), [])
    for kind, vocabulary in vocabularies.items():
        assert {code for k, _, code in rows if k == kind} == set(vocabulary)
    assert ("allergen", "almonds", "tree_nuts") in rows  # generated plural
    assert ("diet_tag", "gf", "gluten_free") in rows


def test_implications_wheat_contains_gluten_and_vegan_is_vegetarian() -> None:
    assert set(implication_rows()) >= {
        ("allergen", "wheat", "gluten"),
        ("diet_tag", "vegan", "vegetarian"),
        ("diet_tag", "vegan", "dairy_free"),
        ("diet_tag", "dairy_free", "lactose_free"),
    }
    assert DIET_TAGS.implied_closure({"vegan"}) == {
        "vegan", "vegetarian", "dairy_free", "lactose_free", "plant_based",
    }  # fmt: skip
    assert ALLERGENS.implied_closure({"wheat"}) == {"wheat", "gluten"}
    assert ALLERGENS.codes_implying({"gluten"}) == {"gluten", "wheat"}
    assert ALLERGENS.codes_implying({"wheat"}) == {"wheat"}


@given(st.frozensets(st.sampled_from(sorted(ALLERGENS))))
def test_bitmask_round_trips(codes: frozenset[str]) -> None:
    mask = ALLERGENS.bitmask(codes)
    assert 0 <= mask < 2**63
    assert ALLERGENS.codes_in(mask) == codes


_separators = st.text(alphabet=" -_.()*'", max_size=3)


@given(
    st.sampled_from([row for row in synonym_rows() if row[0] == "allergen"]),
    st.lists(st.booleans(), min_size=64, max_size=64),
    _separators,
    _separators,
)
def test_allergen_lookup_ignores_case_spacing_and_punctuation(
    row: tuple[str, str, str], upper: list[bool], before: str, after: str
) -> None:
    _, synonym, code = row
    words = synonym.split(" ")
    cased = [word.upper() if flag else word for word, flag in zip(words, upper, strict=False)]
    assert normalize_allergens(before + "  -".join(cased) + after) == (frozenset({code}), [])


def test_vocabulary_refuses_ambiguous_synonyms_and_bad_bits() -> None:
    with pytest.raises(ValueError, match="would mean both"):
        Vocabulary("t", [Term("a", 0, ("x",)), Term("b", 1, ("x",))], generate_plurals=False)
    with pytest.raises(ValueError, match="bit indexes"):
        Vocabulary("t", [Term("a", 0), Term("b", 0)], generate_plurals=False)
    with pytest.raises(ValueError, match="bit indexes"):
        Vocabulary("t", [Term("a", 63)], generate_plurals=False)
    with pytest.raises(ValueError, match="no letters or digits"):
        Vocabulary("t", [Term("a", 0, ("--",))], generate_plurals=False)
    with pytest.raises(ValueError, match="implies unknown"):
        Vocabulary("t", [Term("a", 0, implies=("zzz",))], generate_plurals=False)
