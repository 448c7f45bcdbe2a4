"""Set-based validation: one SQL statement casts and checks every staged row of a chunk.

The statement is generated from the job's header mapping: each target field reads its source column (text),
converts units by the column's factor and collects every problem of the row into an array of
`ingest_row_error`, so a row with three bad cells gets three explanations. It is built in three fenced levels
(OFFSET 0 keeps the planner from inlining them): trim each cell once, parse each number once, then check —
the checks refer to the parsed values instead of re-parsing for every rule. Allergen and diet-tag cells are
normalised through a lookup built from the chunk's DISTINCT cell values with nutrimatch.vocabulary, so SQL
and Python can never disagree on what "Soya" or "gluten free" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from nutrimatch.ingest.fields import FieldType, IngestKind, fields_of

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


NUMBER_PATTERN = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$"


@dataclass(frozen=True)
class SourceColumn:
    index: int
    factor: float


def _error(condition: sql.Composable, field: str, value: sql.Composable, reason: sql.Composable) -> sql.Composable:
    return sql.SQL("CASE WHEN {} THEN ROW({}, {}, {})::ingest_row_error END").format(
        condition, sql.Literal(field), value, reason)


def _raw(field: str) -> sql.Identifier:
    return sql.Identifier(f"raw_{field}")


def _parsed(field: str) -> sql.Identifier:
    return sql.Identifier(f"num_{field}")


@dataclass(frozen=True)
class ValidationQuery:
    """`CREATE TEMP TABLE validated AS …` for one chunk; columns: line, row_number, one per field, errors."""

    statement: sql.Composed
    list_fields: tuple[str, ...]


@dataclass(frozen=True)
class ChunkSource:
    staging_table: str
    chunk_no: int
    row_offset: int
    duplicates_table: str | None


class _Checks:
    """The rules of one kind of file, as SQL over the trimmed (raw_*) and parsed (num_*) cells."""

    def __init__(self, columns: dict[str, SourceColumn], *, per_100g: bool) -> None:
        self.columns = columns
        self.per_100g = per_100g

    def text(self, target: Any) -> list[sql.Composable]:
        raw = _raw(target.name)
        checks = []
        if target.required:
            checks.append(_error(sql.SQL("{} IS NULL").format(raw), target.name, sql.SQL("NULL"),
                                 sql.Literal("required value is missing")))
        if target.name in MAX_TEXT:
            limit = MAX_TEXT[target.name]
            checks.append(_error(sql.SQL("length({}) > {}").format(raw, sql.Literal(limit)), target.name,
                                 sql.SQL("left({}, 200)").format(raw), sql.Literal(f"longer than {limit} characters")))
        return checks

    def numeric(self, target: Any) -> list[sql.Composable]:
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

    def one_of(self, field: str, allowed: tuple[str, ...]) -> sql.Composable:
        raw = _raw(field)
        return _error(sql.SQL("{} IS NOT NULL AND lower({}) NOT IN ({})").format(
            raw, raw, sql.SQL(", ").join(map(sql.Literal, allowed))), field, raw,
            sql.Literal(f"must be one of: {', '.join(allowed)}"))

    def matches(self, field: str, pattern: str, reason: str) -> sql.Composable:
        raw = _raw(field)
        return _error(sql.SQL("{} IS NOT NULL AND {} !~ {}").format(raw, raw, sql.Literal(pattern)), field, raw,
                      sql.Literal(reason))

    def row_checks(self, kind: IngestKind) -> list[sql.Composable]:
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


def build_validation(kind: IngestKind, columns: dict[str, SourceColumn], source: ChunkSource, *,
                     per_100g: bool, decimal_comma: bool) -> ValidationQuery:
    checks = _Checks(columns, per_100g=per_100g)
    trimmed: list[sql.Composable] = []   # level 1: each cell trimmed once
    parsed: list[sql.Composable] = []    # level 2: each number parsed once
    values: list[sql.Composable] = []    # level 3: the stored values
    errors: list[sql.Composable] = []
    joins: list[sql.Composable] = []
    list_fields = []
    for target in fields_of(kind):
        name, raw = sql.Identifier(target.name), _raw(target.name)
        column = columns.get(target.name)
        cell = (sql.SQL("nullif(btrim(s.{}), '')").format(sql.Identifier(f"c{column.index}")) if column
                else sql.SQL("NULL::text"))
        if target.type is FieldType.TEXT_LIST:
            list_fields.append(target.name)
            if column is None:
                values.append(sql.SQL("NULL::text[] AS {}").format(name))
                continue
            alias = sql.Identifier(f"lookup_{target.name}")
            joins.append(sql.SQL("LEFT JOIN {alias} ON {alias}.raw = {cell}").format(alias=alias, cell=cell))
            codes, unknown = sql.Identifier(f"codes_{target.name}"), sql.Identifier(f"unknown_{target.name}")
            trimmed.extend([sql.SQL("{} AS {}").format(cell, raw),
                            sql.SQL("{}.codes AS {}").format(alias, codes),
                            sql.SQL("{}.unknown AS {}").format(alias, unknown)])
            values.append(sql.SQL("{} AS {}").format(codes, name))
            errors.append(_error(sql.SQL("cardinality({}) > 0").format(unknown), target.name, raw,
                                 sql.SQL("'unknown value(s): ' || array_to_string({}, ', ')").format(unknown)))
            continue
        trimmed.append(sql.SQL("{} AS {}").format(cell, raw))
        if target.type is FieldType.TEXT:
            values.append(sql.SQL("{} AS {}").format(raw, name))
            errors.extend(checks.text(target))
        else:
            text = sql.SQL("replace({}, ',', '.')").format(raw) if decimal_comma else raw
            parsed.append(sql.SQL("CASE WHEN {text} ~ {pattern} THEN {text}::numeric * {factor} END AS {num}").format(
                text=text, pattern=sql.Literal(NUMBER_PATTERN), factor=sql.Literal(column.factor if column else 1.0),
                num=_parsed(target.name)))
            values.append(sql.SQL("round({}, 2) AS {}").format(_parsed(target.name), name))
            errors.extend(checks.numeric(target))
    errors.extend(checks.row_checks(kind))
    if source.duplicates_table:
        joins.append(sql.SQL("LEFT JOIN {} d ON d.chunk_no = {} AND d.line = s.line").format(
            sql.Identifier("staging", source.duplicates_table), sql.Literal(source.chunk_no)))
        trimmed.append(sql.SQL("d.first_row AS duplicate_of"))
        errors.append(_error(sql.SQL("duplicate_of IS NOT NULL"), "external_id", _raw("external_id"),
                             sql.SQL("'duplicate external_id; first seen at row ' || duplicate_of")))
    statement = sql.SQL("""
        CREATE TEMP TABLE validated ON COMMIT DROP AS
        SELECT line, row_number, {values}, array_remove(ARRAY[{errors}]::ingest_row_error[], NULL) AS errors
          FROM (SELECT t.*{parsed} FROM (
                  SELECT s.line, s.line + {offset} AS row_number, {trimmed} FROM {staging} s {joins} OFFSET 0
                ) t OFFSET 0) p""").format(
        values=sql.SQL(", ").join(values), errors=sql.SQL(", ").join(errors),
        parsed=sql.SQL("").join(sql.SQL(", ") + p for p in parsed),
        offset=sql.Literal(source.row_offset), trimmed=sql.SQL(", ").join(trimmed),
        staging=sql.Identifier("staging", source.staging_table), joins=sql.SQL(" ").join(joins))
    return ValidationQuery(statement, tuple(list_fields))
