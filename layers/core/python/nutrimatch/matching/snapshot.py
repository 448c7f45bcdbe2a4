"""A vendor's feature snapshot: the active catalog as compact columns, laid out so top-k can prune.

Per product (45 bytes): id (16 bytes, two big-endian halves so they sort like UUIDs), the 9 feature levels
(uint8 each), a constraint signature (uint32), the price in cents (int64) and the same price keyed by
signature in a sorted array. A signature stands for one distinct (allergen mask, diet-tag mask, allergens
declared, category) combination — catalogs have few — so eligibility is decided once per signature and
`eligible_count` is a sum over signatures (with a price cap: one binary search per signature). Masks are
the vocabularies' bitmasks of each product's implied closure (a wheat product contains gluten; a vegan
product is vegetarian), exactly as nutrimatch.vocabulary defines them.

Layout: products are grouped by category, and each category is cut into leaves of LEAF_SIZE products by a
k-d split on the feature levels (near the median of the widest level range, recursively). Each leaf keeps
the range of every feature's level, the AND of its allergen masks, the OR of its diet masks, its category,
whether any product declares allergens and its lowest price: enough to bound the best score a leaf can hold
and to skip leaves no product of which is eligible (engine.py). Runs of GROUP_LEAVES consecutive leaves
(neighbours in k-d order) keep their level ranges too, so that one bound can rule out a whole run.

The snapshot is a function of the catalog at one `catalog_version`; it is rebuilt or reloaded whenever the
version changes (snapshot_store.py). `build` reads the catalog in one REPEATABLE READ transaction so the
version and the rows agree.
"""

from __future__ import annotations

import bisect
import io
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt

from nutrimatch.db import Connection
from nutrimatch.matching.features import LEVELS, NUTRIENT_COLUMNS, amount_columns, levels_of
from nutrimatch.matching.scoring import SCORING_VERSION
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS, Vocabulary

LEAF_SIZE = 64
GROUP_LEAVES = 64
"""Consecutive leaves bounded together: a group bounded below the threshold spares bounding its leaves."""
SPAN_STEPS = LEVELS.bit_length()
"""Powers of two a level range can span: 1, 2, 4, ..., LEVELS."""
PRICE_BITS = 40
NO_PRICE = (1 << PRICE_BITS) - 1
"""Cents of an unknown price: above every real one (numeric(12,2) stays below 10**12 cents < 2**40)."""
FORMAT_VERSION = 3
NO_CATEGORY = -1

UInt8s = npt.NDArray[np.uint8]
UInt32s = npt.NDArray[np.uint32]
UInt64s = npt.NDArray[np.uint64]
Int64s = npt.NDArray[np.int64]
Int32s = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class FeatureSnapshot:
    vendor_id: UUID
    catalog_version: int
    categories: tuple[str, ...]
    build_seconds: float
    group_leaves: int
    # per product, in leaf order
    id_halves: UInt64s  # (n, 2)
    levels: UInt8s  # (n, F)
    signature: UInt32s
    price_cents: Int64s  # NO_PRICE when unknown
    # per signature
    sig_allergens: UInt64s
    sig_diet_tags: UInt64s
    sig_allergens_known: Bools
    sig_category: Int32s
    sig_products: Int64s
    sig_price_keys: Int64s
    """signature << PRICE_BITS | price in cents, of every product, sorted: prices per signature in order."""
    # per leaf; leaf i holds products leaf_offsets[i]:leaf_offsets[i + 1]
    leaf_offsets: Int64s
    leaf_range_index: Int64s
    """(2, F, L): per leaf and feature, the two cells of a sparse table whose max is the best over the leaf's
    level range (see range_index)."""
    group_range_index: Int64s
    """(2, F, G): the same for groups of GROUP_LEAVES consecutive leaves (leaf i is in group i // group_leaves)."""
    leaf_allergens_all: UInt64s
    leaf_diet_tags_any: UInt64s
    leaf_any_known: Bools
    leaf_category: Int32s
    leaf_min_price_cents: Int64s

    @property
    def size(self) -> int:
        return len(self.signature)

    @property
    def leaves(self) -> int:
        return len(self.leaf_offsets) - 1

    @property
    def nbytes(self) -> int:
        return sum(value.nbytes for value in self._arrays().values())

    def category_code(self, name: str) -> int | None:
        index = bisect.bisect_left(self.categories, name)
        return index if index < len(self.categories) and self.categories[index] == name else None

    def product_id(self, index: int) -> UUID:
        high, low = self.id_halves[index]
        return UUID(int=(int(high) << 64) | int(low))

    def _arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}

    def to_bytes(self) -> bytes:
        """An uncompressed .npz (no pickles); `from_bytes` reads it back."""
        meta = {"format": FORMAT_VERSION, "scoring": SCORING_VERSION, "vendor_id": str(self.vendor_id),
                "catalog_version": self.catalog_version, "categories": list(self.categories),
                "build_seconds": self.build_seconds, "group_leaves": self.group_leaves,
                "allergens": _vocabulary_layout(ALLERGENS), "diet_tags": _vocabulary_layout(DIET_TAGS)}
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **self._arrays()}
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureSnapshot:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            expected = (FORMAT_VERSION, SCORING_VERSION, _vocabulary_layout(ALLERGENS), _vocabulary_layout(DIET_TAGS))
            if (meta["format"], meta["scoring"], meta["allergens"], meta["diet_tags"]) != expected:
                raise ValueError("snapshot written by another format, scoring or vocabulary version")
            arrays = {name: archive[name] for name in archive.files if name != "meta"}
        return cls(vendor_id=UUID(meta["vendor_id"]), catalog_version=int(meta["catalog_version"]),
                   categories=tuple(meta["categories"]), build_seconds=float(meta["build_seconds"]),
                   group_leaves=int(meta["group_leaves"]), **arrays)


def _vocabulary_layout(vocabulary: Vocabulary) -> dict[str, int]:
    """Bits and implications both shape the masks, so a snapshot records the layout it was built with."""
    return {code: vocabulary.bitmask(vocabulary.implied_closure([code])) for code in vocabulary}


def closure_mask(vocabulary: Vocabulary, codes: Iterable[str] | None) -> int:
    """Bitmask of `codes` and everything they imply; codes outside the vocabulary add nothing."""
    known = [code for code in codes or () if code in vocabulary]
    return vocabulary.bitmask(vocabulary.implied_closure(known))


def price_cents(price: Any) -> int:
    """A price (numeric(12,2) in the database) in whole cents, rounded as PostgreSQL rounds numeric input."""
    if price is None:
        return NO_PRICE
    return int((Decimal(str(price)) * 100).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass
class _Columns:
    """Per-product columns as read from the catalog, before signatures and layout."""

    id_bytes: bytes
    allergens: Int64s
    diet_tags: Int64s
    allergens_known: Bools
    category: Int32s
    price_cents: Int64s
    levels: UInt8s


def _signatures(columns: _Columns) -> tuple[UInt32s, dict[str, npt.NDArray[Any]]]:
    """Each product's signature (index of its distinct constraint combination) and the signature table."""
    parts = (columns.allergens, columns.diet_tags, columns.allergens_known.astype(np.int64),
             columns.category.astype(np.int64))
    # Fold the columns into one dense code, a column at a time (np.unique over rows is several times slower).
    combined = np.zeros(len(columns.price_cents), dtype=np.int64)
    for values in parts:
        distinct, codes = np.unique(values, return_inverse=True)
        _, combined = np.unique(combined * len(distinct) + codes.reshape(-1), return_inverse=True)
    signature = combined.reshape(-1).astype(np.uint32)
    first = np.unique(signature, return_index=True)[1]
    table = {
        "sig_allergens": parts[0][first].astype(np.uint64), "sig_diet_tags": parts[1][first].astype(np.uint64),
        "sig_allergens_known": parts[2][first].astype(bool), "sig_category": parts[3][first].astype(np.int32),
        "sig_products": np.bincount(signature, minlength=len(first)).astype(np.int64),
        "sig_price_keys": np.sort((signature.astype(np.int64) << PRICE_BITS) | columns.price_cents),
    }
    return signature, table


def _kd_leaves(levels: UInt8s, segment_starts: Iterable[int], total: int) -> tuple[Int64s, Int64s]:
    """A permutation grouping products into leaves (within each segment), and the leaf offsets.

    Each cut splits a node near the median of the feature whose levels spread widest in it, at a multiple of
    LEAF_SIZE so that leaves are full.
    """
    order = np.arange(total, dtype=np.int64)
    bounds = [*segment_starts, total]
    pending = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1) if bounds[i] < bounds[i + 1]]
    leaf_starts: list[int] = []
    while pending:
        start, end = pending.pop()
        if end - start <= LEAF_SIZE:
            leaf_starts.append(start)
            continue
        block = levels[order[start:end]]
        spread = block.max(axis=0).astype(np.int16) - block.min(axis=0)
        axis = int(np.argmax(spread))
        if spread[axis] == 0:  # identical levels: any cut is as good as another
            leaf_starts.extend(range(start, end, LEAF_SIZE))
            continue
        middle = max(1, (end - start) // (2 * LEAF_SIZE)) * LEAF_SIZE
        order[start:end] = order[start:end][np.argpartition(block[:, axis], middle)]
        pending += [(start, start + middle), (start + middle, end)]
    leaf_starts.sort()
    return order, np.array([*leaf_starts, total], dtype=np.int64)


def range_index(low: Int64s, high: Int64s) -> Int64s:
    """Sparse-table cells covering each range [low, high] of levels, per feature (arrays (F, L)).

    A sparse table of a feature's points holds, at (j, i), the best of levels i .. i + 2**j - 1; the best over
    [low, high] is the larger of cells (j, low) and (j, high - 2**j + 1) with 2**j the largest power of two not
    above the range's length. A cell is numbered (feature * SPAN_STEPS + j) * LEVELS + i, flat.
    """
    step = np.floor(np.log2(high - low + 1)).astype(np.int64)
    base = (np.arange(low.shape[0], dtype=np.int64)[:, None] * SPAN_STEPS + step) * LEVELS
    return np.stack([base + low, base + high - (1 << step) + 1])


def assemble(vendor_id: UUID, catalog_version: int, categories: tuple[str, ...], columns: _Columns,
             started: float) -> FeatureSnapshot:
    """Signatures and leaf layout of per-product columns: the snapshot."""
    count = len(columns.price_cents)
    signature, table = _signatures(columns)
    by_category = np.argsort(columns.category, kind="stable")
    sorted_categories = columns.category[by_category]
    segment_starts = np.flatnonzero(np.r_[True, sorted_categories[1:] != sorted_categories[:-1]][:count])
    within, offsets = _kd_leaves(columns.levels[by_category], segment_starts, count)
    order = by_category[within]
    levels, signature, price = columns.levels[order], signature[order], columns.price_cents[order]
    starts = offsets[:-1]

    def per_leaf(reduce: np.ufunc, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if count == 0:
            return np.zeros((0, *values.shape[1:]), dtype=values.dtype)
        return reduce.reduceat(values, starts, axis=0)

    low, high = per_leaf(np.minimum, levels).astype(np.int64), per_leaf(np.maximum, levels).astype(np.int64)
    group_starts = np.arange(0, len(starts), GROUP_LEAVES)
    group_low, group_high = (np.minimum.reduceat(low, group_starts, axis=0) if len(starts) else low,
                             np.maximum.reduceat(high, group_starts, axis=0) if len(starts) else high)
    return FeatureSnapshot(
        vendor_id=vendor_id, catalog_version=catalog_version, categories=categories,
        build_seconds=round(time.perf_counter() - started, 3), group_leaves=GROUP_LEAVES,
        id_halves=np.frombuffer(columns.id_bytes, dtype=">u8").reshape(-1, 2)[order].astype(np.uint64),
        levels=levels, signature=signature, price_cents=price, **table,
        leaf_offsets=offsets, leaf_range_index=range_index(low.T, high.T),
        group_range_index=range_index(group_low.T, group_high.T),
        leaf_allergens_all=per_leaf(np.bitwise_and, table["sig_allergens"][signature]),
        leaf_diet_tags_any=per_leaf(np.bitwise_or, table["sig_diet_tags"][signature]),
        leaf_any_known=per_leaf(np.logical_or, table["sig_allergens_known"][signature]),
        leaf_category=per_leaf(np.minimum, table["sig_category"][signature]),  # leaves hold one category
        leaf_min_price_cents=per_leaf(np.minimum, price),
    )


def from_products(vendor_id: UUID, catalog_version: int, products: Iterable[dict[str, Any]]) -> FeatureSnapshot:
    """A snapshot of product rows given as dicts (the `products` columns); only active ones are kept."""
    started = time.perf_counter()
    active = [p for p in products if p.get("status", "active") == "active"]
    categories = tuple(sorted({p["category"] for p in active if p.get("category") is not None}))
    code = {name: index for index, name in enumerate(categories)}
    raw = {name: np.array([_float(p.get(name)) for p in active], dtype=np.float64) for name in NUTRIENT_COLUMNS}
    amounts = amount_columns(raw, np.array([p.get("nutrient_basis") == "per_100g" for p in active], dtype=bool),
                             np.array([_float(p.get("serving_size_g")) for p in active], dtype=np.float64))
    columns = _Columns(
        id_bytes=b"".join(UUID(str(p["id"])).bytes for p in active),
        allergens=np.array([closure_mask(ALLERGENS, p.get("allergens")) for p in active], dtype=np.int64),
        diet_tags=np.array([closure_mask(DIET_TAGS, p.get("dietary_tags")) for p in active], dtype=np.int64),
        allergens_known=np.array([p.get("allergens") is not None for p in active], dtype=bool),
        category=np.array([code.get(p.get("category"), NO_CATEGORY) for p in active], dtype=np.int32),
        price_cents=np.array([price_cents(p.get("price")) for p in active], dtype=np.int64),
        levels=levels_of(amounts),
    )
    return assemble(vendor_id, catalog_version, categories, columns, started)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


# --- reading a vendor's catalog from PostgreSQL --------------------------------------------------------------

_CATALOG_VERSION = "SELECT catalog_version FROM vendors WHERE id = %(vendor)s"
# Byte order ("C") is code point order for UTF-8: the order Python sorts the same strings in.
_CATEGORIES = """
    SELECT category COLLATE "C" AS category FROM products
     WHERE vendor_id = %(vendor)s AND status = 'active' AND category IS NOT NULL GROUP BY 1 ORDER BY 1
"""
# One row per active product, every field fixed-width and non-null so binary COPY rows have one size and
# numpy can read them in place. Masks are computed once per distinct (allergens, dietary_tags) pair
# (MATERIALIZED: inlined, the planner would compute them again for every row).
_PRODUCT_ROWS = """
COPY (
    WITH pairs AS (
        SELECT DISTINCT coalesce(allergens, '{{}}') AS allergens, dietary_tags
          FROM products WHERE vendor_id = %(vendor)s AND status = 'active'
    ), masks AS MATERIALIZED (
        SELECT pairs.allergens, pairs.dietary_tags,
               (SELECT coalesce(bit_or(v.mask), 0) FROM unnest(pairs.allergens) a(code)
                  JOIN unnest(%(allergen_codes)s::text[], %(allergen_masks)s::int8[]) v(code, mask) USING (code)
               ) AS allergen_mask,
               (SELECT coalesce(bit_or(v.mask), 0) FROM unnest(pairs.dietary_tags) t(code)
                  JOIN unnest(%(diet_codes)s::text[], %(diet_masks)s::int8[]) v(code, mask) USING (code)
               ) AS diet_mask
          FROM pairs
    )
    SELECT p.id, m.allergen_mask, m.diet_mask, p.allergens IS NOT NULL, coalesce(c.code - 1, -1)::int4,
           coalesce((p.price * 100)::int8, %(no_price)s), p.nutrient_basis = 'per_100g',
           coalesce(p.serving_size_g::float8, 'NaN'), {nutrients}
      FROM products p
      JOIN masks m ON m.allergens = coalesce(p.allergens, '{{}}') AND m.dietary_tags = p.dietary_tags
      LEFT JOIN unnest(%(categories)s::text[]) WITH ORDINALITY AS c(name, code) ON c.name = p.category
     WHERE p.vendor_id = %(vendor)s AND p.status = 'active'
) TO STDOUT (FORMAT BINARY)
""".format(nutrients=", ".join(f"coalesce(p.{name}::float8, 'NaN')" for name in NUTRIENT_COLUMNS))

_FIELDS: list[tuple[str, str]] = [
    ("id", "S16"), ("allergens", ">i8"), ("diet_tags", ">i8"), ("known", "u1"), ("category", ">i4"),
    ("price_cents", ">i8"), ("per_100g", "u1"), ("serving_size_g", ">f8"),
    *[(name, ">f8") for name in NUTRIENT_COLUMNS],
]
_ROW = np.dtype([("field_count", ">i2")]
                + [item for index, (name, kind) in enumerate(_FIELDS) for item in ((f"length{index}", ">i4"),
                                                                                    (name, kind))])
_COPY_HEADER = 19  # signature (11), flags (4), header extension length (4); PostgreSQL writes no extension
_BLOCK_BYTES = 8 * 1024 * 1024


def _vocabulary_params(vocabulary: Vocabulary) -> tuple[list[str], list[int]]:
    codes = sorted(vocabulary)
    return codes, [closure_mask(vocabulary, [code]) for code in codes]


def _binary_rows(conn: Connection, params: dict[str, Any]) -> Iterator[npt.NDArray[Any]]:
    """Structured rows of the binary COPY in blocks of about _BLOCK_BYTES (memory stays bounded)."""
    pending = bytearray()
    offset = _COPY_HEADER
    with conn.cursor().copy(_PRODUCT_ROWS, params) as copy:
        for data in copy:
            pending += data
            if len(pending) - offset >= _BLOCK_BYTES:
                whole = (len(pending) - offset) // _ROW.itemsize * _ROW.itemsize
                yield np.frombuffer(bytes(pending[offset:offset + whole]), dtype=_ROW)
                del pending[:offset + whole]
                offset = 0
    whole = max(0, len(pending) - offset) // _ROW.itemsize * _ROW.itemsize
    if whole:
        yield np.frombuffer(bytes(pending[offset:offset + whole]), dtype=_ROW)
    if bytes(pending[offset + whole:]) != b"\xff\xff":  # the trailer: a field count of -1
        raise ValueError("unexpected bytes at the end of the binary COPY")


def _columns_of(rows: npt.NDArray[Any]) -> _Columns:
    raw = {name: rows[name].astype(np.float64) for name in NUTRIENT_COLUMNS}
    amounts = amount_columns(raw, rows["per_100g"].astype(bool), rows["serving_size_g"].astype(np.float64))
    return _Columns(id_bytes=rows["id"].tobytes(), allergens=rows["allergens"].astype(np.int64),
                    diet_tags=rows["diet_tags"].astype(np.int64), allergens_known=rows["known"].astype(bool),
                    category=rows["category"].astype(np.int32), price_cents=rows["price_cents"].astype(np.int64),
                    levels=levels_of(amounts))


def _joined(blocks: list[_Columns]) -> _Columns:
    if not blocks:
        return _columns_of(np.zeros(0, dtype=_ROW))
    return _Columns(id_bytes=b"".join(block.id_bytes for block in blocks),
                    **{f.name: np.concatenate([getattr(block, f.name) for block in blocks])
                       for f in fields(_Columns) if f.name != "id_bytes"})


def build(conn: Connection, vendor_id: UUID) -> FeatureSnapshot:
    """The snapshot of the vendor's active catalog at its current catalog_version.

    `conn` must be in a REPEATABLE READ (or SERIALIZABLE) transaction scoped to the vendor, so that the version
    and every row come from one database snapshot (snapshot_store.consistent_read opens one).
    """
    started = time.perf_counter()
    isolation = conn.execute("SELECT current_setting('transaction_isolation') AS level").fetchone()
    if isolation is None or isolation["level"] not in ("repeatable read", "serializable"):
        raise ValueError("snapshot.build needs a REPEATABLE READ transaction")
    version = conn.execute(_CATALOG_VERSION, {"vendor": vendor_id}).fetchone()
    if version is None:
        raise LookupError("vendor not visible in this transaction")
    categories = tuple(row["category"] for row in conn.execute(_CATEGORIES, {"vendor": vendor_id}))
    allergen_codes, allergen_masks = _vocabulary_params(ALLERGENS)
    diet_codes, diet_masks = _vocabulary_params(DIET_TAGS)
    params = {"vendor": vendor_id, "no_price": NO_PRICE, "categories": list(categories),
              "allergen_codes": allergen_codes, "allergen_masks": allergen_masks,
              "diet_codes": diet_codes, "diet_masks": diet_masks}
    # The masks of the few distinct (allergens, tags) pairs join every row by hash: the planner, expecting
    # far more pairs, would sort the whole catalog for a merge join instead.
    conn.execute("SET LOCAL enable_mergejoin = off")
    columns = _joined([_columns_of(rows) for rows in _binary_rows(conn, params)])
    return assemble(vendor_id, int(version["catalog_version"]), categories, columns, started)
