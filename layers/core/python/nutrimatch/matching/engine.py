"""Exact top-k over a feature snapshot: hard constraints as bitmask filters, scores as table lookups,
and branch-and-bound over the snapshot's leaves so that most of a large catalog is never scored.

For one request:
1. Eligibility per constraint signature: no avoided allergen in the product's allergen closure (nor one that
   belies a required diet tag: milk in a "vegan" product), every required diet tag in its tag closure,
   allergens declared (unless the person avoids nothing or the vendor accepts unknown allergen information),
   the category asked for. A price cap is checked per product.
2. The plan's lookup table gives each feature level its points (scoring.py): a product's score is a sum of
   9 lookups, and a node's bound is the sum, per feature, of the best points over the node's level range.
3. Leaves with no eligible product are dropped (their masks, category and lowest price say so); the others
   are bounded, after their groups (runs of consecutive leaves): the best-bound leaves of the best-bound groups
   are scored first (a few thousand products, found without sorting), and their k-th best score is a threshold
   that discards most groups and leaves unsorted, and spares bounding the leaves of the discarded groups. The
   rest are scored best bound first, in growing batches, keeping the k best (score desc, id asc), until the
   k-th best score beats the bound of every leaf left. A leaf whose bound only equals it may hold a tie with a
   smaller id, so it is scored too.
The result is the exact top k of the whole eligible catalog: the list a full scan gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from uuid import UUID

import numpy as np
import numpy.typing as npt

from nutrimatch.matching.features import FEATURES, LEVELS
from nutrimatch.matching.scoring import ScoringPlan
from nutrimatch.matching.snapshot import NO_PRICE, PRICE_BITS, SPAN_STEPS, FeatureSnapshot

PROBE_PRODUCTS = 4096
"""About how many products the probe scores; later batches start at that and double."""
NO_SUCH_CATEGORY = -3

Indexes = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    max_price: Decimal | None = None


@dataclass(frozen=True)
class Ranked:
    product_id: UUID
    score: int


@dataclass(frozen=True)
class Ranking:
    items: list[Ranked]
    eligible_count: int
    scored_products: int
    """How many products were scored (the rest were pruned): a measure of the engine's work."""


class _Search:
    """The state of one top-k search: the plan's tables, the eligibility masks and the k best so far."""

    def __init__(self, snapshot: FeatureSnapshot, plan: ScoringPlan, k: int, filters: Filters,
                 allow_unknown_allergens: bool) -> None:
        self.snapshot, self.k = snapshot, k
        self.avoid, self.require = np.uint64(plan.exclude_mask), np.uint64(plan.require_mask)
        self.need_known = bool(plan.avoid_mask) and not allow_unknown_allergens
        self.category = None if filters.category is None else snapshot.category_code(filters.category)
        if filters.category is not None and self.category is None:
            self.category = NO_SUCH_CATEGORY
        self.max_cents = None if filters.max_price is None else _whole_cents(filters.max_price)
        self.table = plan.table
        self.eligible_signatures = self._eligible_signatures()
        self.best: Indexes = np.zeros(0, dtype=np.int64)
        self.best_scores: Indexes = np.zeros(0, dtype=np.int64)
        self.scored_products = 0

    def _eligible_signatures(self) -> npt.NDArray[np.bool_]:
        s = self.snapshot
        eligible: npt.NDArray[np.bool_] = (s.sig_allergens & self.avoid) == 0
        eligible &= (s.sig_diet_tags & self.require) == self.require
        if self.need_known:
            eligible &= s.sig_allergens_known
        if self.category is not None:
            eligible &= s.sig_category == self.category
        return eligible

    def eligible_count(self) -> int:
        s = self.snapshot
        signatures = np.flatnonzero(self.eligible_signatures).astype(np.int64)
        if self.max_cents is None:
            return int(s.sig_products[signatures].sum())
        first = np.searchsorted(s.sig_price_keys, signatures << PRICE_BITS)
        past = np.searchsorted(s.sig_price_keys, (signatures << PRICE_BITS) + self.max_cents, side="right")
        return int((past - first).sum())

    @property
    def threshold(self) -> float:
        """The k-th best score so far: a leaf bounded below it cannot place a product in the top k."""
        return float(self.best_scores[-1]) if len(self.best) == self.k else -np.inf

    def viable_leaves(self) -> Indexes:
        """The leaves that may hold an eligible product."""
        s = self.snapshot
        keep = ((s.leaf_allergens_all & self.avoid) == 0) & ((s.leaf_diet_tags_any & self.require) == self.require)
        if self.need_known:
            keep &= s.leaf_any_known
        if self.category is not None:
            keep &= s.leaf_category == self.category
        if self.max_cents is not None:
            keep &= s.leaf_min_price_cents <= self.max_cents
        return np.flatnonzero(keep)

    @staticmethod
    def bounds(sparse_table: npt.NDArray[np.int32], range_index: Indexes) -> Indexes:
        """Per node (leaf or group), the best score its products can reach: per feature, the best points over
        the node's level range."""
        cells = sparse_table[range_index]
        best = np.maximum(cells[0], cells[1], out=cells[0])
        total: Indexes = best.sum(axis=0, dtype=np.int64)
        return total

    def score_leaves(self, leaves: Indexes) -> None:
        s = self.snapshot
        members = _ranges(s.leaf_offsets[leaves], s.leaf_offsets[leaves + 1])
        ok = self.eligible_signatures[s.signature[members]]
        if self.max_cents is not None:
            ok &= s.price_cents[members] <= self.max_cents
        members = members[ok]
        self.scored_products += len(members)
        levels = s.levels[members]
        scores = np.zeros(len(members), dtype=np.int64)
        for feature in range(len(FEATURES)):
            scores += np.take(self.table[feature], levels[:, feature])
        self.best, self.best_scores = _top(s, np.r_[self.best, members], np.r_[self.best_scores, scores], self.k)

    def run(self, sparse_table: npt.NDArray[np.int32]) -> None:
        s = self.snapshot
        leaves = self.viable_leaves()
        # A leaf can score no more than its group: the groups' bounds say which leaves need bounds of their own.
        group_bounds = self.bounds(sparse_table, s.group_range_index)[leaves // s.group_leaves]
        # Probe: the best-bound leaves of the best-bound groups, found without sorting, give a threshold that
        # discards most of the rest.
        batch = max(1, PROBE_PRODUCTS * s.leaves // s.size)
        if batch < len(leaves):
            candidates = np.argpartition(-group_bounds, min(4 * batch, len(leaves)) - 1)[:4 * batch]
            bounds = self.bounds(sparse_table, s.leaf_range_index[:, :, leaves[candidates]])
            first = candidates[np.argpartition(-bounds, batch - 1)[:batch]]
            self.score_leaves(leaves[first])
            rest = group_bounds >= self.threshold
            rest[first] = False
            leaves = leaves[rest]
        bounds = self.bounds(sparse_table, s.leaf_range_index[:, :, leaves])
        reachable = bounds >= self.threshold
        leaves, bounds = leaves[reachable], bounds[reachable]
        order = np.argsort(-bounds, kind="stable")
        leaves, bounds = leaves[order], -bounds[order]  # ascending, for searchsorted
        done = 0
        while done < len(leaves):
            # only leaves bounded at or above the threshold can still place a product
            reachable_count = int(np.searchsorted(bounds, -self.threshold, side="right"))
            if reachable_count <= done:
                break
            end = min(reachable_count, done + batch)
            self.score_leaves(leaves[done:end])
            done, batch = end, batch * 2


def _ranges(starts: Indexes, ends: Indexes) -> Indexes:
    """Concatenation of range(start, end) for each pair."""
    lengths = ends - starts
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _sparse_table(table: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Flat (F, SPAN_STEPS, LEVELS): at (f, j, i) the best points of levels i .. i + 2**j - 1 of feature f."""
    steps = np.empty((len(table), SPAN_STEPS, LEVELS), dtype=np.int32)
    steps[:, 0] = table
    for step in range(1, SPAN_STEPS):
        half = 1 << (step - 1)
        steps[:, step, :LEVELS - half] = np.maximum(steps[:, step - 1, :-half], steps[:, step - 1, half:])
        steps[:, step, LEVELS - half:] = steps[:, step - 1, LEVELS - half:]  # cells no range reaches
    return steps.ravel()


def _top(snapshot: FeatureSnapshot, members: Indexes, scores: Indexes, k: int) -> tuple[Indexes, Indexes]:
    """The k best by (score desc, id asc), in that order."""
    if len(members) > 4 * k:  # cheap cut to the k-th best score before the exact lexicographic sort
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        members, scores = members[keep], scores[keep]
    ids = snapshot.id_halves[members]
    order = np.lexsort((ids[:, 1], ids[:, 0], -scores))[:k]
    return members[order], scores[order]


def _whole_cents(price: Decimal) -> int:
    """Cents of the highest price not above `price` (prices are whole cents), within -1 (no price qualifies)
    and the highest a price can have (every known price qualifies)."""
    return min(max(int((price * 100).to_integral_value(rounding=ROUND_FLOOR)), -1), NO_PRICE - 1)


def rank(snapshot: FeatureSnapshot, plan: ScoringPlan, *, k: int, filters: Filters = Filters(),
         allow_unknown_allergens: bool = False) -> Ranking:
    search = _Search(snapshot, plan, k, filters, allow_unknown_allergens)
    if snapshot.size:
        search.run(_sparse_table(plan.table))
    items = [Ranked(snapshot.product_id(int(index)), int(score))
             for index, score in zip(search.best, search.best_scores, strict=True)]
    return Ranking(items=items, eligible_count=search.eligible_count(), scored_products=search.scored_products)
