"""Set-based validation: one SQL statement casts and checks every staged row of a chunk.

The statement is generated from the job's header mapping: each target field reads its source column (text),
converts units by the column's factor and collects every problem of the row into an array of
`ingest_row_error`, so a row with three bad cells gets three explanations. It is built in fenced levels
(OFFSET 0 keeps the planner from inlining them): trim each cell once; check all the row's numbers with one
regular expression and hash the external id once; parse each number once (a cell is matched on its own only
when its row's numbers are not all well-formed); then the stored values and the checks, which refer to the
parsed values instead of re-parsing for every rule. Allergen and diet-tag cells are normalised through a
lookup built from the chunk's DISTINCT cell values with nutrimatch.vocabulary, so SQL and Python can never
disagree on what "Soya" or "gluten free" means.

The result, the temporary table `validated`, holds each row as it would be stored (id, the kind's columns
with their defaults, for products the hash of the source cells) and `errors`, NULL for a valid row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import UUID

from psycopg import sql

from nutrimatch.ingest.fields import FieldType, IngestKind, fields_of
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS, synonym_rows

# Plausible maxima per serving and per 100 g (canonical units). Anything above is a unit mistake or a typo.
NUTRIENT_MAXIMA: dict[str, tuple[float, float]] = {
    "calories": (3000, 900),
    "protein_g": (500, 100),
    "carbs_g": (500, 100),
    "fat_g": (500, 100),
    "saturated_fat_g": (500, 100),
    "fiber_g": (200, 100),
    "sugar_g": (500, 100),
    "added_sugar_g": (500, 100),
    "sodium_mg": (20000, 40000),
    "potassium_mg": (20000, 20000),
}
OTHER_MAXIMA = {"price": 99999.99, "serving_size_g": 5000}
# Labels round sodium under 5 mg to 0, so a fractional value below 5 in a milligram column is grams.
SODIUM_GRAMS_SUSPECT_BELOW = 5
PRODUCT_STATUSES = ("active", "retired", "draft")
CUSTOMER_STATUSES = ("active", "inactive")
MAX_TEXT = {"external_id": 200, "name": 500, "brand": 200, "category": 200, "description": 5000,
            "ingredients": 10000, "email": 320}
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
LOCALE_PATTERN = r"^[a-z]{2,3}([-_][A-Za-z]{2})?$"


NUMBER = r"[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)"
NUMBER_PATTERN = f"^{NUMBER}$"
# A row's non-empty numeric cells joined by ';' (when none contains one): one match checks them all.
NUMBERS_PATTERN = f"^(?:{NUMBER}(?:;{NUMBER})*)?$"
# Bump when the rules change what the same source cells become (a check, a default, a conversion): products
# loaded under the old rules are then validated again by their next file instead of being skipped as unchanged.
# The limits above and the vocabulary are part of the fingerprint already.
RULES_VERSION = 2

# How a validated value is stored (defaults where the file is silent); columns not listed are stored as read.
_STORED_AS = {
    "currency": "upper(coalesce({}, 'USD'))",
    "dietary_tags": "coalesce({}, '{{}}')",
    "status": "lower(coalesce({}, 'active'))",
    "email": "lower({})",
    "locale": "coalesce(replace({}, '_', '-'), 'en-US')",
}


@dataclass(frozen=True)
class SourceColumn:
    index: int
    factor: float


@dataclass(frozen=True)
class _Error:
    """A rule: when `condition` holds, the row gets (field, value, reason) as one of its errors."""

    condition: sql.Composable
    field: str
    value: sql.Composable
    reason: sql.Composable

    def element(self) -> sql.Composable:
        return sql.SQL("CASE WHEN {} THEN ROW({}, {}, {})::ingest_row_error END").format(
            self.condition, sql.Literal(self.field), self.value, self.reason)


def _error(condition: sql.Composable, field: str, value: sql.Composable, reason: sql.Composable) -> _Error:
    return _Error(condition, field, value, reason)


def _raw(field: str) -> sql.Identifier:
    return sql.Identifier(f"raw_{field}")


def _parsed(field: str) -> sql.Identifier:
    return sql.Identifier(f"num_{field}")


@dataclass(frozen=True)
class ValidationQuery:
    """`CREATE TEMP TABLE validated AS …` for one chunk; columns: line, row_number, id, the kind's stored
    columns, source_hash (products), errors."""

    statement: sql.Composed
    list_fields: tuple[str, ...]


@dataclass(frozen=True)
class ChunkSource:
    staging_table: str
    chunk_no: int
    row_offset: int
    duplicates_table: str | None
    changed_table: str | None = None
    """When given, only the lines it lists for the chunk are validated (the others are unchanged)."""


@dataclass(frozen=True)
class Interpretation:
    """How a job reads its source cells: which column holds each field, in which unit, on which basis."""

    kind: IngestKind
    columns: dict[str, SourceColumn]
    per_100g: bool
    decimal_comma: bool

    @classmethod
    def of_plan(cls, kind: IngestKind | str, plan: dict[str, Any]) -> Interpretation:
        return cls(IngestKind(kind),
                   {field: SourceColumn(spec["index"], spec["factor"]) for field, spec in plan["columns"].items()},
                   per_100g=plan["nutrient_basis"] == "per_100g", decimal_comma=plan["dialect"]["decimal_comma"])

    @property
    def basis(self) -> str:
        return "per_100g" if self.per_100g else "per_serving"

    def stored_columns(self) -> tuple[str, ...]:
        return stored_columns(self.kind)

    def derived_columns(self) -> list[sql.Composable]:
        """Columns a staging table computes from its cells while they are copied (so in the parallel loads):
        a hash of the external id, for products the 64-bit hash of the mapped cells (as read) and of this
        interpretation of them, which tells an unchanged row without validating it, and the external id as
        validation reads it; fixed-width columns first."""
        key = sql.SQL("nullif(btrim({}), '')").format(sql.Identifier(f"c{self.columns['external_id'].index}"))
        # Repeated external ids are looked for among rows whose key repeats: joining on a number is cheaper.
        derived: list[sql.Composable] = [
            sql.SQL("external_key bigint GENERATED ALWAYS AS (hashtextextended({}, 0)) STORED").format(key)]
        if self.kind is IngestKind.PRODUCTS:
            cells = sql.SQL(", ").join(sql.Identifier(f"c{self.columns[f].index}") for f in sorted(self.columns))
            derived.append(sql.SQL("source_hash bigint GENERATED ALWAYS AS (hash_record_extended(ROW({}), {})) "
                                   "STORED").format(cells, sql.Literal(self._fingerprint())))
        derived.append(sql.SQL("external_id text GENERATED ALWAYS AS ({}) STORED").format(key))
        return derived

    def _fingerprint(self) -> int:
        facts = [RULES_VERSION, self.kind.value, sorted((f, c.index, c.factor) for f, c in self.columns.items()),
                 self.per_100g, self.decimal_comma, _rules_fingerprint()]
        return int.from_bytes(hashlib.sha256(json.dumps(facts).encode()).digest()[:8], "big", signed=True)


@cache
def _rules_fingerprint() -> str:
    rules = [NUTRIENT_MAXIMA, OTHER_MAXIMA, SODIUM_GRAMS_SUSPECT_BELOW, PRODUCT_STATUSES, CUSTOMER_STATUSES,
             MAX_TEXT, EMAIL_PATTERN, LOCALE_PATTERN, NUMBER, _STORED_AS, sorted(ALLERGENS.empty_markers),
             sorted(DIET_TAGS.empty_markers),
             sorted(synonym_rows())]
    return hashlib.sha256(json.dumps(rules).encode()).hexdigest()


def stored_columns(kind: IngestKind) -> tuple[str, ...]:
    """The columns a row is written with, after id and vendor_id."""
    names = tuple(target.name for target in fields_of(kind))
    return (*names, "nutrient_basis") if kind is IngestKind.PRODUCTS else names


def row_hash(kind: IngestKind, row: str = "v") -> sql.Composable:
    """Hash of a row's stored values (products): equal hashes mean an unchanged product."""
    return sql.SQL("int8send(hash_record_extended(ROW({}), 0))").format(
        sql.SQL(", ").join(sql.Identifier(row, c) for c in stored_columns(kind)))


class _Checks:
    """The rules of one kind of file, as SQL over the trimmed (raw_*) and parsed (num_*) cells."""

    def __init__(self, columns: dict[str, SourceColumn], *, per_100g: bool) -> None:
        self.columns = columns
        self.per_100g = per_100g

    def text(self, target: Any) -> list[_Error]:
        raw = _raw(target.name)
        checks = []
        if target.required:
            checks.append(_error(sql.SQL("{} IS NULL").format(raw), target.name, sql.SQL("NULL"),
                                 sql.Literal("required value is missing")))
        if target.name in MAX_TEXT:
            limit = MAX_TEXT[target.name]
            # Counting characters walks the text; its size in bytes bounds that count for free.
            checks.append(_error(sql.SQL("octet_length({r}) > {n} AND length({r}) > {n}").format(
                r=raw, n=sql.Literal(limit)), target.name,
                                 sql.SQL("left({}, 200)").format(raw), sql.Literal(f"longer than {limit} characters")))
        return checks

    def numeric(self, target: Any) -> list[_Error]:
        raw, parsed = _raw(target.name), _parsed(target.name)
        checks = [
            _error(sql.SQL("{} IS NOT NULL AND {} IS NULL").format(raw, parsed), target.name, raw,
                   sql.Literal("not a number")),
            _error(sql.SQL("{} < 0").format(parsed), target.name, raw, sql.Literal("must not be negative")),
        ]
        if target.name in NUTRIENT_MAXIMA:
            maximum = NUTRIENT_MAXIMA[target.name][1 if self.per_100g else 0]
            basis = "per 100 g" if self.per_100g else "per serving"
            unit = target.unit.value if target.unit else ""
            checks.append(_error(sql.SQL("{} > {}").format(parsed, sql.Literal(maximum)), target.name, raw,
                                 sql.Literal(f"implausibly high: above {maximum:g} {unit} {basis}")))
        elif target.name in OTHER_MAXIMA:
            maximum = OTHER_MAXIMA[target.name]
            checks.append(_error(sql.SQL("{} > {}").format(parsed, sql.Literal(maximum)), target.name, raw,
                                 sql.Literal(f"implausibly high: above {maximum:g}")))
        column = self.columns.get(target.name)
        if target.name == "sodium_mg" and column is not None and column.factor == 1.0:
            checks.append(_error(
                sql.SQL("{p} > 0 AND {p} < {limit} AND {p} <> trunc({p})").format(
                    p=parsed, limit=sql.Literal(SODIUM_GRAMS_SUSPECT_BELOW)),
                target.name, raw, sql.Literal("looks like grams; sodium_mg expects milligrams")))
        if target.name == "serving_size_g":
            checks.append(_error(sql.SQL("{} = 0").format(parsed), target.name, raw,
                                 sql.Literal("serving size must be positive")))
        return checks

    def one_of(self, field: str, allowed: tuple[str, ...]) -> _Error:
        raw = _raw(field)
        return _error(sql.SQL("{} IS NOT NULL AND lower({}) NOT IN ({})").format(
            raw, raw, sql.SQL(", ").join(map(sql.Literal, allowed))), field, raw,
            sql.Literal(f"must be one of: {', '.join(allowed)}"))

    def matches(self, field: str, pattern: str, reason: str) -> _Error:
        raw = _raw(field)
        return _error(sql.SQL("{} IS NOT NULL AND {} !~ {}").format(raw, raw, sql.Literal(pattern)), field, raw,
                      sql.Literal(reason))

    def row_checks(self, kind: IngestKind) -> list[_Error]:
        if kind is IngestKind.CUSTOMERS:
            return [self.one_of("status", CUSTOMER_STATUSES),
                    self.matches("email", EMAIL_PATTERN, "not an email address"),
                    self.matches("locale", LOCALE_PATTERN, "not a locale such as en-US")]
        checks = [self.one_of("status", PRODUCT_STATUSES),
                  self.matches("currency", "^[A-Za-z]{3}$", "must be a 3-letter ISO 4217 code")]
        for part, whole in (("saturated_fat_g", "fat_g"), ("added_sugar_g", "sugar_g")):
            if part in self.columns and whole in self.columns:
                checks.append(_error(sql.SQL("{} > {}").format(_parsed(part), _parsed(whole)), part, _raw(part),
                                     sql.Literal(f"{part} exceeds {whole}")))
        return checks


def lines_to_validate(source: ChunkSource) -> sql.Composable:
    """The WHERE clause (over the staged rows `s`) that keeps the lines to validate."""
    if not source.changed_table:
        return sql.SQL("")
    return sql.SQL("WHERE s.line IN (SELECT line FROM {} WHERE chunk_no = {})").format(
        sql.Identifier("staging", source.changed_table), sql.Literal(source.chunk_no))


def build_validation(reading: Interpretation, source: ChunkSource, vendor_id: UUID) -> ValidationQuery:
    checks = _Checks(reading.columns, per_100g=reading.per_100g)
    trimmed: list[sql.Composable] = []   # level 1: each cell trimmed once
    numbers: list[sql.Composable] = []   # level 2: the row's numeric cells, as parsed
    parsed: list[sql.Composable] = []    # level 3: each number parsed once
    values: list[sql.Composable] = []    # level 4: the stored values
    errors: list[_Error] = []
    joins: list[sql.Composable] = []
    list_fields = []
    for target in fields_of(reading.kind):
        name, raw = sql.Identifier(target.name), _raw(target.name)
        column = reading.columns.get(target.name)
        stored = sql.SQL(_STORED_AS.get(target.name, "{}"))
        if target.name == "external_id":
            cell: sql.Composable = sql.SQL("s.external_id")
        elif column:
            cell = sql.SQL("nullif(btrim(s.{}), '')").format(sql.Identifier(f"c{column.index}"))
        else:
            cell = sql.SQL("NULL::text")
        if target.type is FieldType.TEXT_LIST:
            list_fields.append(target.name)
            if column is None:
                values.append(sql.SQL("{} AS {}").format(stored.format(sql.SQL("NULL::text[]")), name))
                continue
            alias = sql.Identifier(f"lookup_{target.name}")
            joins.append(sql.SQL("LEFT JOIN {alias} ON {alias}.raw = {cell}").format(alias=alias, cell=cell))
            codes, unknown = sql.Identifier(f"codes_{target.name}"), sql.Identifier(f"unknown_{target.name}")
            trimmed.extend([sql.SQL("{} AS {}").format(cell, raw),
                            sql.SQL("{}.codes AS {}").format(alias, codes),
                            sql.SQL("{}.unknown AS {}").format(alias, unknown)])
            values.append(sql.SQL("{} AS {}").format(stored.format(codes), name))
            errors.append(_error(sql.SQL("cardinality({}) > 0").format(unknown), target.name, raw,
                                 sql.SQL("'unknown value(s): ' || array_to_string({}, ', ')").format(unknown)))
            continue
        trimmed.append(sql.SQL("{} AS {}").format(cell, raw))
        if target.type is FieldType.TEXT:
            values.append(sql.SQL("{} AS {}").format(stored.format(raw), name))
            errors.extend(checks.text(target))
            continue
        text = sql.SQL("replace({}, ',', '.')").format(raw) if reading.decimal_comma else raw
        if column is not None:
            numbers.append(text)
        scaled = sql.SQL("{}::numeric").format(text)
        if column is not None and column.factor != 1.0:
            scaled = sql.SQL("{} * {}").format(scaled, sql.Literal(column.factor))
        parsed.append(sql.SQL("CASE WHEN numbers_ok OR {text} ~ {pattern} THEN {scaled} END AS {num}").format(
            text=text, pattern=sql.Literal(NUMBER_PATTERN), scaled=scaled, num=_parsed(target.name)))
        values.append(sql.SQL("round({}, 2) AS {}").format(_parsed(target.name), name))
        errors.extend(checks.numeric(target))
    errors.extend(checks.row_checks(reading.kind))
    if reading.kind is IngestKind.PRODUCTS:
        values.append(sql.SQL("{}::text AS nutrient_basis").format(sql.Literal(reading.basis)))
        trimmed.append(sql.SQL("s.source_hash"))
        values.append(sql.SQL("source_hash"))
    if source.duplicates_table:
        joins.append(sql.SQL("LEFT JOIN {} d ON d.chunk_no = {} AND d.line = s.line").format(
            sql.Identifier("staging", source.duplicates_table), sql.Literal(source.chunk_no)))
        trimmed.append(sql.SQL("d.first_row AS duplicate_of"))
        errors.append(_error(sql.SQL("duplicate_of IS NOT NULL"), "external_id", _raw("external_id"),
                             sql.SQL("'duplicate external_id; first seen at row ' || duplicate_of")))
    # All of a row's numbers at once (a regular expression costs per call more than per character).
    cells = sql.SQL(", ").join(numbers)
    numbers_ok = (sql.SQL("strpos(concat({cells}), ';') = 0 AND concat_ws(';', {cells}) ~ {pattern}").format(
        cells=cells, pattern=sql.Literal(NUMBERS_PATTERN)) if numbers else sql.SQL("true"))
    statement = sql.SQL("""
        CREATE TEMP TABLE validated ON COMMIT DROP AS
        SELECT line, row_number, entity_uuid_of_digest(id_digest) AS id, {values},
               CASE WHEN {any_error} THEN array_remove(ARRAY[{errors}]::ingest_row_error[], NULL) END AS errors
          FROM (SELECT c.*{parsed} FROM (
                  SELECT t.*, {numbers_ok} AS numbers_ok,
                         sha256(uuid_send({vendor}::uuid) || convert_to(raw_external_id, 'UTF8')) AS id_digest
                    FROM (SELECT s.line, s.line + {offset} AS row_number, {trimmed}
                            FROM {staging} s {joins} {changed} OFFSET 0) t OFFSET 0
                ) c OFFSET 0) p""").format(
        values=sql.SQL(", ").join(values),
        any_error=sql.SQL(" OR ").join(e.condition for e in errors),
        errors=sql.SQL(", ").join(e.element() for e in errors),
        parsed=sql.SQL("").join(sql.SQL(", ") + p for p in parsed), numbers_ok=numbers_ok,
        vendor=sql.Literal(str(vendor_id)), offset=sql.Literal(source.row_offset),
        trimmed=sql.SQL(", ").join(trimmed), staging=sql.Identifier("staging", source.staging_table),
        joins=sql.SQL(" ").join(joins), changed=lines_to_validate(source))
    return ValidationQuery(statement, tuple(list_fields))
