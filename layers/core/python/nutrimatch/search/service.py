"""Product search and lookup for one vendor, read from the replica when it is fit to answer.

Each read runs as a unit of work the router may repeat on the writer (a reader that fails mid-read), so it
only reads and keeps no state between attempts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from nutrimatch.db import Connection
from nutrimatch.db.routing import NO_METRICS, Consistency, MetricsSink, ReplicaRouter
from nutrimatch.errors import DependencyUnavailable, InvalidInput, NotFound
from nutrimatch.search.cursor import Cursor, decode_cursor, encode_cursor
from nutrimatch.search.models import (
    Facet,
    FacetCount,
    Facets,
    Product,
    ProductHit,
    ProductRead,
    SearchRequest,
    SearchResults,
    Sort,
)
from nutrimatch.search.query import (
    FACET_VALUES,
    PRELUDE_SQL,
    PRODUCT_COLUMNS,
    Filters,
    SortSpec,
    Statement,
    build_filters,
    collected_page,
    facet_counts,
    match_sample,
    relevance_page,
    sort_spec,
    walked_page,
)
from nutrimatch.search.text import SearchText, parse_search_text
from nutrimatch.tenancy.ids import entity_uuid
from nutrimatch.vocabulary import DIET_TAGS

BAND_ATTEMPTS = 4
BAND_WIDENING = 4
PRODUCT_SQL = f"""SELECT {PRODUCT_COLUMNS}, pg_is_in_recovery() AS in_recovery
                    FROM products p WHERE p.vendor_id = %(vendor_id)s AND p.id = %(id)s"""


@dataclass(frozen=True)
class _Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    facets: Facets | None
    in_recovery: bool


def search_products(router: ReplicaRouter, vendor_id: UUID, request: SearchRequest, *,
                    metrics: MetricsSink = NO_METRICS) -> SearchResults:
    text = parse_search_text(request.q) if request.q and request.q.strip() else None
    sort = request.sort or (Sort.RELEVANCE if text else Sort.NAME)
    if sort is Sort.RELEVANCE and text is None:
        raise InvalidInput("sort=relevance needs search text in q", details={"field": "sort"})
    spec = sort_spec(sort)
    after = decode_cursor(request.cursor, sort, spec.kind) if request.cursor else None
    filters = build_filters(vendor_id, request)
    search = _Search(router, request, text, sort, spec, after, filters)
    try:
        routed = router.read(vendor_id, search.run, metrics=metrics)
    except psycopg.errors.QueryCanceled as error:
        raise DependencyUnavailable("the search took too long; add words or filters to narrow it") from error
    page = routed.value
    return SearchResults(
        products=[ProductHit(**row, score=row["sort_key"] if sort is Sort.RELEVANCE else None)
                  for row in page.rows],
        next_cursor=page.next_cursor, sort=sort, facets=page.facets, freshness=routed.freshness,
        replica_lag_seconds=routed.replica_lag_seconds, served_by="replica" if page.in_recovery else "primary",
    )


def get_product(router: ReplicaRouter, vendor_id: UUID, external_id: str, *,
                consistency: Consistency = Consistency.EVENTUAL, metrics: MetricsSink = NO_METRICS) -> ProductRead:
    params = {"vendor_id": vendor_id, "id": entity_uuid(vendor_id, external_id)}

    def read(conn: Connection) -> dict[str, Any] | None:
        return conn.execute(PRODUCT_SQL, params, prepare=False).fetchone()

    routed = router.read(vendor_id, read, consistency=consistency, metrics=metrics)
    if routed.value is None:
        raise NotFound("product not found")
    return ProductRead(product=Product(**routed.value), freshness=routed.freshness,
                       replica_lag_seconds=routed.replica_lag_seconds,
                       served_by="replica" if routed.value["in_recovery"] else "primary")


@dataclass(frozen=True)
class _Search:
    router: ReplicaRouter
    request: SearchRequest
    text: SearchText | None
    sort: Sort
    spec: SortSpec
    after: Cursor | None
    filters: Filters

    def run(self, conn: Connection) -> _Page:
        settings = self.router.database.settings
        text = self.text or SearchText("")
        prelude = conn.execute(PRELUDE_SQL, {
            "timeout": str(settings.search_statement_timeout_ms), "words": text.words, "prefix": text.prefix,
            "alternative": text.prefix_is_alternative, "ratio": settings.search_prefix_lookup_ratio,
            "estimate": self._narrowed,
        }, prepare=False).fetchone()
        assert prelude is not None
        if self.text is not None:
            if prelude["nodes"] == 0:  # only stop words or punctuation: nothing to look for, nor to count
                facets = self._summary({}, 0) if self.request.facets else None
                return _Page([], None, facets, prelude["in_recovery"])
            if prelude["rank_query"] == "T":
                raise InvalidInput("q needs at least one word that is not excluded with -",
                                   details={"field": "q"})
        filters = self.filters.with_text(prelude["match_query"], prelude["prefix_filter"])
        rows = self._page(conn, filters, prelude["rank_query"], prelude["match_estimate"])
        limit = self.request.limit
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(Cursor(self.sort, rows[-1]["sort_key"], rows[-1]["id"]))
        facets = self._facets(conn, filters) if self.request.facets else None
        return _Page(rows, next_cursor, facets, prelude["in_recovery"])

    @property
    def _narrowed(self) -> bool:
        """Whether search text narrows an exact order to the full-text index's matches."""
        return self.sort is not Sort.RELEVANCE and self.text is not None

    def _page(self, conn: Connection, filters: Filters, rank_query: str,
              match_estimate: float | None) -> list[dict[str, Any]]:
        """The next page plus one row, which tells whether there is a page after it (see nutrimatch.search.query
        for the ways: the ranked pool, collected-then-sorted matches, a bounded walk along an index, bands)."""
        fetch = self.request.limit + 1
        settings = self.router.database.settings
        if self.sort is Sort.RELEVANCE:
            # One plan shape whatever the words (the index's matches in storage order, up to a bound): worth
            # preparing, so that planning it for the vendor's 16 partitions (about 2 ms) is not repeated.
            return _fetch(conn, relevance_page(filters, rank_query, settings.search_rank_candidates,
                                               settings.search_rank_examined, self.after, fetch), prepare=True)
        cap = settings.search_sort_candidates
        # Collecting is pointless when the planner expects far more matches than may be collected.
        if self._narrowed and not (match_estimate is not None and match_estimate > 2 * cap):
            collected = self._collected(conn, filters, fetch, cap)
            if collected is not None:
                return collected
        rows = self._walk(conn, filters, fetch)
        if rows is None and self._narrowed:  # the matches sit far along the order
            rows = self._banded(conn, filters, fetch, match_estimate)
        if rows is None:
            raise self._too_many()
        return rows

    def _too_many(self) -> InvalidInput:
        return InvalidInput(f"too many products match to sort them by {self.sort.value} within the search's "
                            "limits: narrow the search with more words, filters or a category",
                            details={"field": "sort"})

    def _collected(self, conn: Connection, filters: Filters, fetch: int, cap: int, *,
                   until: Cursor | None = None) -> list[dict[str, Any]] | None:
        """The page from the matches (up to `until`) sorted in memory, or None when there are more than `cap`."""
        statement = collected_page(filters, self.spec, self.after, fetch, cap, until=until)
        rows = _fetch(conn, statement)
        return rows if not rows or rows[0]["matched"] <= cap else None

    def _banded(self, conn: Connection, filters: Filters, fetch: int,
                match_estimate: float | None) -> list[dict[str, Any]] | None:
        """The page from the first band of matches that fills it (see nutrimatch.search.query), or from all the
        matches left when the sample runs out; None when a band or the rest holds more than may be collected."""
        settings = self.router.database.settings
        cap, size = settings.search_sort_candidates, settings.search_band_sample
        sample = _fetch(conn, match_sample(filters, self.spec, self.after, size))
        drawn = sample[0]["drawn"] if sample else 0
        matches_per_key = (match_estimate or drawn) / size if drawn == size else 1.0
        rank = min(int(cap / 2 / max(matches_per_key, 1.0)), len(sample) - 1)  # about half the cap per band
        for _ in range(BAND_ATTEMPTS if sample else 0):
            bound = sample[rank]
            rows = self._collected(conn, filters, fetch, cap, until=Cursor(self.sort, bound["sort_key"], bound["id"]))
            if rows is None:  # too many matches before the bound
                if rank == 0:
                    return None
                rank //= 2
            elif len(rows) == fetch:
                return rows
            elif rank == len(sample) - 1:  # the page goes on past the last key drawn
                break
            else:  # the page goes on past the bound
                rank = min(rank * BAND_WIDENING + BAND_WIDENING - 1, len(sample) - 1)
        return self._collected(conn, filters, fetch, cap)

    def _walk(self, conn: Connection, filters: Filters, fetch: int) -> list[dict[str, Any]] | None:
        """The page walked along the order's index, or None when the walk's budget ran out first."""
        after = self.after
        rows: list[dict[str, Any]] | None = []
        if not (after is not None and after.key is None and self.spec.nullable):
            rows = self._walked(conn, filters, after, fetch, nulls=False)
            after = None  # the NULL section, if reached, starts from its beginning
        if rows is not None and self.spec.nullable and len(rows) < fetch:
            rest = self._walked(conn, filters, after, fetch - len(rows), nulls=True)
            rows = None if rest is None else rows + rest
        return rows

    def _walked(self, conn: Connection, filters: Filters, after: Cursor | None, fetch: int, *,
                nulls: bool) -> list[dict[str, Any]] | None:
        budget = self.router.database.settings.search_walk_budget
        rows = _fetch(conn, walked_page(filters, self.spec, after, fetch, budget, nulls=nulls))
        hits = [row for row in rows if row["hit"] and not row["beyond_budget"]]
        exhausted = len(hits) < fetch and any(row["beyond_budget"] for row in rows)
        return None if exhausted else hits

    def _facets(self, conn: Connection, filters: Filters) -> Facets:
        sample = self.router.database.settings.search_facet_sample
        counts: dict[str, Counter[str]] = {facet: Counter() for facet in Facet}
        counted = 0
        for row in _fetch(conn, facet_counts(filters, sample)):
            if row["facet"] == "counted":
                counted = row["count"]
            elif row["facet"] == Facet.DIET_TAGS:
                for tag in _diet_tags_met(row["tags"]):
                    counts[Facet.DIET_TAGS][tag] += row["count"]
            else:
                counts[row["facet"]][row["value"]] += row["count"]
        return self._summary(counts, counted, exact=counted < sample)

    def _summary(self, counts: dict[str, Counter[str]], counted: int, *, exact: bool = True) -> Facets:
        """The asked-for facets of `counts`, most common values first."""
        top = {facet: [FacetCount(value=value, count=count)
                       for value, count in sorted(counts.get(facet, {}).items(), key=lambda vc: (-vc[1], vc[0]))]
                      [:FACET_VALUES]
               for facet in self.request.facets}
        return Facets(**top, counted=counted, exact=exact)


def _diet_tags_met(declared: list[str]) -> frozenset[str]:
    """The diet tags whose filter a product with the `declared` tags passes: those they imply. A tag the
    vocabulary no longer knows (stored before it changed) counts as itself."""
    known = [tag for tag in declared if tag in DIET_TAGS]
    return DIET_TAGS.implied_closure(known) | (frozenset(declared) - frozenset(known))


def _fetch(conn: Connection, statement: Statement, *, prepare: bool = False) -> list[dict[str, Any]]:
    # Unprepared unless asked: how to collect, walk or count depends on how many products match, which only a
    # plan made for the actual tsquery and values can estimate. (A prepared statement keeps custom plans while
    # its generic plan would cost more.)
    return conn.execute(statement.sql, statement.params, prepare=prepare).fetchall()
