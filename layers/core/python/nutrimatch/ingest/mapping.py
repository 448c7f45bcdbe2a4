"""Mapping a CSV's header row onto the target fields, with the unit and basis of each nutrient column.

A header is read as a name, optional units and an optional basis: "Energy (kcal) per 100 g" is the name
"energy", the unit kcal and the basis per_100g. Names are compared case-, space- and punctuation-blind
("Product Name", "product_name" and "productName" are one name), against the synonyms below, unless the
vendor has confirmed a mapping for that header before (a learned mapping: a field, or None to ignore the
column), which wins.

Units. A column's values are multiplied by `factor` to reach the field's canonical unit (fields.py). Without a
unit in the header the canonical unit is assumed (`unit_from_header` is then False), except for columns named
like the Open Food Facts export (`<name>_100g`, `<name>_serving`), which follows its own conventions: every
mass in grams (so "sodium_100g" is grams: factor 1000) and "energy" in kJ ("energy_100g": factor 1/4.184;
"energy-kcal_100g" says kcal).

Salt. Many labels (all of the EU's) declare salt, not sodium. A salt column maps to sodium_mg with its factor
times 0.4: EU Regulation 1169/2011 defines salt as sodium * 2.5 (NaCl is 39.3 % sodium by mass). So
"salt_100g" (grams) gets 1000 * 0.4 = 400 and "salt_mg" 0.4. When a file has both, the sodium column is kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from nutrimatch.ingest.fields import IngestKind, TargetField, Unit, conversion_factor, fields_of

SODIUM_PER_SALT = 0.4


class Basis(StrEnum):
    PER_SERVING = "per_serving"
    PER_100G = "per_100g"
    PER_100ML = "per_100ml"


_PRODUCT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "external_id": (
        "external_id", "id", "sku", "product_id", "product_code", "product_sku", "item_id", "item_code",
        "item_number", "article_number", "code", "barcode", "gtin", "ean", "upc", "plu",
    ),
    "name": ("name", "product_name", "title", "product_title", "item_name", "product", "item", "display_name"),
    "brand": ("brand", "brands", "brand_name", "manufacturer", "producer"),
    "description": (
        "description", "product_description", "long_description", "short_description", "details", "desc",
    ),
    "category": (
        "category", "categories", "category_name", "product_category", "categories_en", "department", "aisle",
        "product_type",
    ),
    "price": ("price", "unit_price", "retail_price", "sale_price", "selling_price", "list_price", "msrp"),
    "currency": ("currency", "currency_code", "ccy"),
    "calories": ("calories", "calorie", "cal", "kcal", "kj", "kilocalories", "energy", "energy_value"),
    "protein_g": ("protein", "proteins", "total_protein"),
    "carbs_g": (
        "carbs", "carb", "carbohydrate", "carbohydrates", "total_carbs", "total_carbohydrate",
        "total_carbohydrates", "carbohydrates_total",
    ),
    "fat_g": ("fat", "fats", "total_fat", "fat_total", "lipids"),
    "saturated_fat_g": ("saturated_fat", "saturated_fats", "sat_fat", "saturates", "saturated", "fat_saturated"),
    "fiber_g": ("fiber", "fibre", "fibers", "fibres", "dietary_fiber", "dietary_fibre", "total_fiber"),
    "sugar_g": ("sugar", "sugars", "total_sugar", "total_sugars"),
    "added_sugar_g": ("added_sugar", "added_sugars", "sugar_added", "sugars_added", "includes_added_sugars"),
    "sodium_mg": ("sodium", "na", "salt", "salt_content", "nacl"),
    "potassium_mg": ("potassium",),
    "serving_size_g": (
        "serving_size", "serving", "serving_weight", "serving_quantity", "portion_size", "portion",
    ),
    "ingredients": ("ingredients", "ingredient", "ingredients_text", "ingredient_list", "ingredients_list"),
    "allergens": (
        "allergens", "allergen", "allergens_en", "allergens_tags", "allergy_info", "allergen_info", "contains",
    ),
    "dietary_tags": (
        "dietary_tags", "diet_tags", "dietary", "diets", "diet", "dietary_info", "dietary_flags", "tags",
        "labels", "labels_en", "claims",
    ),
    "status": ("status", "product_status", "availability", "state", "active"),
}  # fmt: skip

_CUSTOMER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "external_id": (
        "external_id", "id", "customer_id", "customer_number", "customer_no", "client_id", "member_id",
        "member_number", "patient_id", "user_id", "account_id",
    ),
    "name": ("name", "full_name", "customer_name", "client_name", "member_name", "patient_name", "display_name"),
    "email": ("email", "mail", "email_address"),
    "locale": ("locale", "language", "lang", "language_code", "preferred_language"),
    "status": ("status", "customer_status", "member_status", "state", "active"),
}  # fmt: skip

SYNONYMS: Mapping[IngestKind, Mapping[str, tuple[str, ...]]] = {
    IngestKind.PRODUCTS: _PRODUCT_SYNONYMS,
    IngestKind.CUSTOMERS: _CUSTOMER_SYNONYMS,
}
"""Per kind, per target field, the header names recognised for it (in normalize_header's form)."""

_SALT_NAMES = frozenset({"salt", "saltcontent", "nacl"})

_UNIT_WORDS = {
    "kcal": Unit.KCAL, "kilocalorie": Unit.KCAL, "kilocalories": Unit.KCAL,
    "kj": Unit.KJ, "kilojoule": Unit.KJ, "kilojoules": Unit.KJ,
    "g": Unit.G, "gr": Unit.G, "gram": Unit.G, "grams": Unit.G,
    "mg": Unit.MG, "milligram": Unit.MG, "milligrams": Unit.MG,
    "mcg": Unit.MCG, "ug": Unit.MCG, "microgram": Unit.MCG, "micrograms": Unit.MCG,
}  # fmt: skip

# Tried in order on the normalized header; the bare "per 100" must come after "per 100 ml".
_BASIS_PHRASES = (
    (Basis.PER_100G, re.compile(r"(?:^|_)(?:per_)?100_?(?:g|gr|gram|grams)(?=_|$)")),
    (Basis.PER_100ML, re.compile(r"(?:^|_)(?:per_)?100_?ml(?=_|$)")),
    (Basis.PER_100G, re.compile(r"(?:^|_)per_100(?=_|$)")),
    (Basis.PER_SERVING, re.compile(r"(?:^|_)(?:per_)?(?:serving|portion)$")),
)
_OFF_NUTRIENT_COLUMN = re.compile(r"[a-z0-9-]+_(?:100g|serving)")
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_WORD = re.compile(r"[^\W_]+")

_MAX_LISTED_HEADERS = 50


def normalize_header(header: str) -> str:
    """The key a header is known by: lower-case words joined by "_", accents dropped.

    "Energy (kcal)" → "energy_kcal", "Protéines/100 g" → "proteines_100_g", "µg" → "ug". Used for the keys of
    learned mappings; normalizing a normalized header changes nothing.
    """
    # Folding twice: a compatibility decomposition can reveal capitals ("🄐" → "(A)") and folding can reveal
    # combining marks ("İ" → "i̇"); after the second pass nothing changes.
    # casefold turns the micro sign into a Greek mu: in a header it is always the unit prefix.
    plain = _fold(_fold(header)).replace("μ", "u")
    return "_".join(_WORD.findall(plain))


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _compact(name: str) -> str:
    """A name with no separators at all, so "productName" (→ "productname") meets "product_name"."""
    return name.replace("_", "")


@dataclass(frozen=True)
class ColumnMapping:
    """Where one source column goes. `field` None means the column is ignored."""

    index: int
    header: str
    field: str | None
    unit: Unit | None = None
    """Unit of the values in the file: from the header, else assumed (see the module's doc)."""
    unit_from_header: bool = False
    basis: Basis | None = None
    """For nutrients: what amount of food a value is for (None for other fields)."""
    factor: float = 1.0
    """Multiplier from the file's unit to the field's canonical unit (and from salt to sodium)."""
    from_salt: bool = False
    learned: bool = False


@dataclass(frozen=True)
class HeaderMapping:
    kind: IngestKind
    columns: tuple[ColumnMapping, ...]
    """One per source column, in order."""
    missing_required: tuple[str, ...]
    unmapped: tuple[str, ...]
    """Headers that match no field (not those the vendor said to ignore)."""
    duplicates: tuple[ColumnMapping, ...]
    """Columns that match a field another column was preferred for; they are ignored in `columns`."""

    @property
    def ok(self) -> bool:
        return not self.missing_required

    @property
    def by_field(self) -> dict[str, ColumnMapping]:
        return {column.field: column for column in self.columns if column.field is not None}

    @property
    def message(self) -> str | None:
        """What to tell the vendor when required columns are missing; None when none are."""
        if not self.missing_required:
            return None
        headers = [column.header for column in self.columns]
        found = ", ".join(headers[:_MAX_LISTED_HEADERS]) or "none"
        if len(headers) > _MAX_LISTED_HEADERS:
            found += f" (and {len(headers) - _MAX_LISTED_HEADERS} more)"
        synonyms = SYNONYMS[self.kind]
        if len(self.missing_required) == 1:
            expected = "one of: " + ", ".join(synonyms[self.missing_required[0]])
        else:
            expected = "; ".join(f"for {name} one of: {', '.join(synonyms[name])}" for name in self.missing_required)
        return (
            f"Missing required column(s) for {self.kind}: {', '.join(self.missing_required)}. "
            f"Found columns: {found}. Expected {expected}."
        )


def map_headers(
    headers: Sequence[str], kind: IngestKind | str, learned: Mapping[str, str | None] | None = None
) -> HeaderMapping:
    """Map each header onto a target field of `kind`.

    `learned` maps headers (normalized or not: they are normalized here) to the field the vendor confirmed
    for them, or to None for a column the vendor said to ignore; it wins over the synonyms. Raises ValueError
    if it names a field `kind` does not have.
    """
    kind = IngestKind(kind)
    targets = {target.name: target for target in fields_of(kind)}
    learned_fields = {normalize_header(header): name for header, name in (learned or {}).items()}
    unknown = sorted({name for name in learned_fields.values() if name is not None} - targets.keys())
    if unknown:
        raise ValueError(f"learned mapping names field(s) {kind} does not have: {', '.join(unknown)}")
    field_by_name = {_compact(name): field for field, synonyms in SYNONYMS[kind].items() for name in synonyms}

    candidates = []
    for index, header in enumerate(headers):
        normalized = normalize_header(header)
        if normalized not in learned_fields:
            candidates.append(_map_by_synonyms(index, header, targets, field_by_name))
        elif (learned_field := learned_fields[normalized]) is None:
            candidates.append(ColumnMapping(index, header, None, learned=True))
        else:
            candidates.append(_map_learned(index, header, targets[learned_field]))

    matches_by_field: dict[str, list[ColumnMapping]] = defaultdict(list)
    for candidate in candidates:
        if candidate.field is not None:
            matches_by_field[candidate.field].append(candidate)
    kept = {
        max(matches, key=lambda column: _preference(column, targets[field])).index
        for field, matches in matches_by_field.items()
    }
    duplicates = tuple(c for c in candidates if c.field is not None and c.index not in kept)
    return HeaderMapping(
        kind=kind,
        columns=tuple(
            c if c.field is None or c.index in kept else ColumnMapping(c.index, c.header, None) for c in candidates
        ),
        missing_required=tuple(
            target.name for target in targets.values() if target.required and target.name not in matches_by_field
        ),
        unmapped=tuple(c.header for c in candidates if c.field is None and not c.learned),
        duplicates=duplicates,
    )


def _preference(column: ColumnMapping, target: TargetField) -> tuple[bool, bool, bool, bool, int]:
    """Among columns matching one field: learned, then sodium over salt, then the unit stated in the header
    (the canonical one best: "energy-kcal_100g" over "energy_100g"), then the first."""
    return (
        column.learned,
        not column.from_salt,
        column.unit_from_header and column.unit == target.unit,
        column.unit_from_header,
        -column.index,
    )


@dataclass(frozen=True)
class _ParsedHeader:
    name: str
    """Compact form (see _compact) of what is left once units and basis are taken out."""
    units: frozenset[Unit]
    basis: Basis | None
    off_style: bool


def _parse_header(header: str) -> list[_ParsedHeader]:
    """Readings of `header` to try in turn: as it is, then without its bracketed parts ("Price (EUR)")."""
    off_style = _OFF_NUTRIENT_COLUMN.fullmatch(header.strip()) is not None
    readings = [_read(normalize_header(header), off_style)]
    without_brackets = normalize_header(_BRACKETED.sub(" ", header))
    if without_brackets and without_brackets != normalize_header(header):
        readings.append(_read(without_brackets, off_style))
    return readings


def _read(normalized: str, off_style: bool) -> _ParsedHeader:
    basis: Basis | None = None
    rest = normalized
    for phrase_basis, phrase in _BASIS_PHRASES:
        without_phrase = phrase.sub("", rest).strip("_")
        if without_phrase != rest:
            basis, rest = phrase_basis, without_phrase
            break
    if not rest:  # the phrase was the whole header ("Serving", "Portion"): a name, not a basis
        basis, rest = None, normalized
    words = rest.split("_")
    units = frozenset(_UNIT_WORDS[word] for word in words if word in _UNIT_WORDS)
    # A header that is only a unit ("Kcal", "kJ") names the quantity by it.
    name_words = [word for word in words if word not in _UNIT_WORDS] or words
    return _ParsedHeader("".join(name_words), units, basis, off_style)


def _map_by_synonyms(
    index: int, header: str, targets: Mapping[str, TargetField], field_by_name: Mapping[str, str]
) -> ColumnMapping:
    for reading in _parse_header(header):
        field = field_by_name.get(reading.name)
        if field is None:
            continue
        target = targets[field]
        if target.unit is None:
            # "Price per 100 g" is a unit price, not the price: a unit or basis on a unitless field is no match.
            if reading.units or reading.basis:
                break
            return ColumnMapping(index, header, field)
        unit = _unit_of(reading, target.unit)
        if (reading.units and unit is None) or (reading.basis and not target.nutrient):
            break
        return _quantity_column(index, header, target, target.unit, reading, unit, learned=False)
    return ColumnMapping(index, header, None)


def _map_learned(index: int, header: str, target: TargetField) -> ColumnMapping:
    """The vendor's choice of field stands; units and basis still come from the header where it has them."""
    if target.unit is None:
        return ColumnMapping(index, header, target.name, learned=True)
    reading = _parse_header(header)[0]
    unit = _unit_of(reading, target.unit)
    return _quantity_column(index, header, target, target.unit, reading, unit, learned=True)


def _unit_of(reading: _ParsedHeader, canonical: Unit) -> Unit | None:
    """The header's unit if it names exactly one, convertible to `canonical`; else None."""
    if len(reading.units) != 1:
        return None
    (unit,) = reading.units
    return unit if conversion_factor(unit, canonical) is not None else None


def _quantity_column(
    index: int,
    header: str,
    target: TargetField,
    canonical: Unit,
    reading: _ParsedHeader,
    unit: Unit | None,
    *,
    learned: bool,
) -> ColumnMapping:
    source_unit = unit or _assumed_unit(reading, canonical)
    factor = conversion_factor(source_unit, canonical)
    assert factor is not None, "a unit comes from _unit_of or _assumed_unit, both of the canonical's dimension"
    from_salt = target.name == "sodium_mg" and reading.name in _SALT_NAMES
    return ColumnMapping(
        index=index,
        header=header,
        field=target.name,
        unit=source_unit,
        unit_from_header=unit is not None,
        basis=(reading.basis or Basis.PER_SERVING) if target.nutrient else None,
        factor=factor * SODIUM_PER_SALT if from_salt else factor,
        from_salt=from_salt,
        learned=learned,
    )


def _assumed_unit(reading: _ParsedHeader, canonical: Unit) -> Unit:
    """The unit of a column whose header names none: the canonical one, or Open Food Facts' (module doc)."""
    if not reading.off_style:
        return canonical
    if canonical is Unit.KCAL:
        return Unit.KJ if reading.name == "energy" else Unit.KCAL
    return Unit.G
