"""The SQL of a search: filters, the keyset page of each sort order, bounded relevance and capped facets.

Every value is a bound parameter; only fragments written here (column names, directions) are formatted in.
Searches read `tenant_products` (sql/migrations/0007_search.sql): the caller's products, through a view whose
tenant predicate stands in for row-level security, under which no full-text or range condition could use an
index.

Relevance is bounded: the index yields matches in storage order; the first `search_rank_candidates` of them
that pass every filter, among the first `search_rank_examined`, are ranked with ts_rank, and pages walk that
ranked pool. A query matching fewer products than the pool — nearly every specific query — is ranked exactly.
A very common word (hundreds of thousands of matches) is ranked over a sample: products are spread over the
vendor's 16 hash partitions by id, so the first matches of the first partition are a random sample of all
matches, and with name matches weighted ten times ingredient matches, the top of the sample is made of name
matches — just not necessarily all the best ones. Ranking everything instead costs time proportional to the
match count (seconds at 2M products). Likewise a filter that rejects nearly every match of a common word finds
what passes among the first matches read, instead of reading them all. Relevance pages end with the pool.

Exact orders (name, price, nutrients) page through every match. Each has an index on (key, id), and a page is
found in one of three bounded ways:
- collected: the matches (at most `search_sort_candidates` + 1) are gathered through the full-text index and
  sorted in memory. Used for search text when the planner does not expect many more matches than that; exact,
  and immune to matches that all sit at the far end of the order;
- walked: the order's index is read in order — one range scan per partition, merged — checking each product,
  until the page is full or `search_walk_budget` products of the scope (vendor, status, category, brand) were
  read. Used for browsing (the scope leads the composite indexes: price within a category, name or price within
  a brand) and for matches too many to collect, then usually dense enough along the order;
- banded: for search text whose walk ran out (its matches sit far along the order), the matches up to a bound
  of the order are collected — the full-text index's matches ANDed with a range of the order's index, so only
  the products in both are read — and sorted. The bound comes from a sample of the matches (the first
  `search_band_sample` in storage order: ids are random and spread products over the partitions), chosen to
  hold about half the matches that may be collected; a band that holds too few for the page is widened, one
  that holds too many narrowed. A full band is exact: every match before its bound is in it.
The first two meet: for matches spread evenly along the order, collecting reads one product per match and
walking reads about page size * catalog size / matches, equal near the square root of page size * catalog size
(about 6,500 for pages of 20 in 2M products). A search none of them can answer within its bounds (a browse
whose filters reject nearly every product along the order, a band of more matches than may be collected) is
refused with 422 naming `sort` rather than read for seconds.

Facets count the first `search_facet_sample` matches, and say whether that was all of them. A diet tag counts
what its filter would return: the products whose tags imply it (a vegan product is vegetarian too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from nutrimatch.errors import InvalidInput
from nutrimatch.search.cursor import Cursor, KeyKind
from nutrimatch.search.models import RANGE_COLUMNS, SearchRequest, Sort
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS

PRODUCT_FIELDS = (
    "id", "external_id", "name", "brand", "description", "category", "price", "currency", "nutrient_basis",
    "serving_size_g", "calories", "protein_g", "carbs_g", "fat_g", "saturated_fat_g", "fiber_g", "sugar_g",
    "added_sugar_g", "sodium_mg", "potassium_mg", "ingredients", "allergens", "dietary_tags", "status",
    "updated_at",
)
PRODUCT_COLUMNS = ", ".join(f"p.{name}" for name in PRODUCT_FIELDS)
FACET_VALUES = 50


@dataclass(frozen=True)
class SortSpec:
    expression: str  # over products p
    descending: bool
    kind: KeyKind
    nullable: bool  # NULL keys come last in both directions


SORTS: dict[Sort, SortSpec] = {
    Sort.NAME: SortSpec("lower(p.name)", False, KeyKind.TEXT, False),
    Sort.PRICE_ASC: SortSpec("p.price", False, KeyKind.NUMERIC, True),
    Sort.PRICE_DESC: SortSpec("p.price", True, KeyKind.NUMERIC, True),
    Sort.CALORIES_ASC: SortSpec("p.calories", False, KeyKind.NUMERIC, True),
    Sort.CALORIES_DESC: SortSpec("p.calories", True, KeyKind.NUMERIC, True),
    Sort.PROTEIN_ASC: SortSpec("p.protein_g", False, KeyKind.NUMERIC, True),
    Sort.PROTEIN_DESC: SortSpec("p.protein_g", True, KeyKind.NUMERIC, True),
    Sort.SUGAR_ASC: SortSpec("p.sugar_g", False, KeyKind.NUMERIC, True),
    Sort.SUGAR_DESC: SortSpec("p.sugar_g", True, KeyKind.NUMERIC, True),
    Sort.SODIUM_ASC: SortSpec("p.sodium_mg", False, KeyKind.NUMERIC, True),
    Sort.SODIUM_DESC: SortSpec("p.sodium_mg", True, KeyKind.NUMERIC, True),
}
RELEVANCE = SortSpec("score", True, KeyKind.SCORE, False)


def sort_spec(sort: Sort) -> SortSpec:
    return RELEVANCE if sort is Sort.RELEVANCE else SORTS[sort]


# Run first in every search transaction. Parallel plans are off: they return a LIMIT's rows in a varying
# order, which would make the relevance pool differ between two pages (and 2 cores serve 8 clients better
# without them). The text is compiled here once, so the page query sees constant tsqueries it can estimate:
# - rank_query: querytree(q), the query without its negated words ('T' when nothing else is left): a negation
#   excludes products but has nothing to score;
# - match_query, for the full-text index;
# - prefix_filter: the word being typed (search_prefix_after_words: its stem as a prefix, and the stems it may
#   have grown past; sql/migrations/0017_search_prefix_past_the_stem.sql). A GIN index answers a prefix by
#   gathering the postings of every lexeme that starts with it ('fres':* is fresh, freshly, freshwater...) in
#   every partition it searches. When the word being typed is far more common than the whole words before it
#   (`search_prefix_lookup_ratio` times: fetching a product to check a prefix costs about twenty times reading
#   one posting of it), the index looks up the whole words only and the prefix is checked on the rows they
#   yield ("kelraos fres" at 2M products: 45 ms → 2.5 ms). Otherwise the prefix stays in the lookup, where it
#   narrows it ("casa skillet": checking skillet on every product with "casa" took 290 ms);
# - match_estimate (when asked for): how many products the index lookup is expected to yield.
PRELUDE_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       set_config('max_parallel_workers_per_gather', '0', true) AS parallel,
       set_config('statement_timeout', %(timeout)s, true) AS timeout,
       numnode(q) AS nodes,
       querytree(q) AS rank_query,
       match::text AS match_query,
       CASE WHEN split THEN p::text END AS prefix_filter,
       CASE WHEN %(estimate)s THEN search_match_estimate(match) END AS match_estimate
  FROM search_tsquery(%(words)s, %(prefix)s, %(alternative)s) AS q,
       websearch_to_tsquery('english', %(words)s) AS w,
       search_prefix_after_words(w, %(prefix)s) AS p,
       LATERAL (SELECT CASE WHEN NOT %(alternative)s AND numnode(p) > 0 AND querytree(w) NOT IN ('', 'T')
                            THEN search_match_estimate(p)
                                 > %(ratio)s * search_match_estimate(w)
                            ELSE false END AS split) AS s,
       LATERAL (SELECT CASE WHEN split THEN w ELSE q END AS match) AS m
"""


@dataclass
class Filters:
    """The WHERE clause of a search, shared by its page and facet queries: the scope (vendor, status, category,
    brand: equalities the planner can estimate and indexes can lead with), the full-text lookup, and the checks
    on each product (everything else; a range check names its column)."""

    scope: list[str] = field(default_factory=list)
    lookup: list[str] = field(default_factory=list)
    checks: list[tuple[str, str | None]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def narrow(self, clause: str, **params: Any) -> None:
        self.scope.append(clause)
        self.params.update(params)

    def check(self, clause: str, column: str | None = None, **params: Any) -> None:
        self.checks.append((clause, column))
        self.params.update(params)

    @property
    def sql(self) -> str:
        return " AND ".join(self.scope + self.lookup + [clause for clause, _ in self.checks])

    def for_lookup(self) -> tuple[str, str]:
        """(WHERE, checks) of reading the full-text index's matches and checking each."""
        return " AND ".join(self.scope + self.lookup), " AND ".join(c for c, _ in self.checks) or "true"

    def for_walk(self, key: str) -> tuple[str, str]:
        """(WHERE, checks) of a walk along the index of `key`: a range on the key itself bounds the walk, and the
        full-text lookup becomes a check of each product."""
        bounds = [clause for clause, column in self.checks if f"p.{column}" == key]
        checks = self.lookup + [clause for clause, column in self.checks if f"p.{column}" != key]
        return " AND ".join(self.scope + bounds), " AND ".join(checks) or "true"

    def with_text(self, match_query: str, prefix_filter: str | None) -> Filters:
        """These filters and the compiled search text (see PRELUDE_SQL); an empty text adds nothing: a browse."""
        lookup = list(self.lookup)
        checks = list(self.checks)
        params = dict(self.params)
        if match_query:
            lookup.append("p.search_tsv @@ %(match_query)s::tsquery")
            params["match_query"] = match_query
        if prefix_filter:
            # The function form of @@, which no index matches: a check on each row, never an index lookup.
            checks.append(("ts_match_vq(p.search_tsv, %(prefix_filter)s::tsquery)", None))
            params["prefix_filter"] = prefix_filter
        return Filters(self.scope, lookup, checks, params)


def build_filters(vendor_id: UUID, request: SearchRequest) -> Filters:
    """Every filter of the request but the search text (compiled in the database: `Filters.with_text`)."""
    filters = Filters()
    # The explicit vendor lets the planner prune to the vendor's partitions; RLS checks it again.
    filters.narrow("p.vendor_id = %(vendor_id)s", vendor_id=vendor_id)
    filters.narrow("p.status = %(status)s", status=request.status)
    if request.category is not None:
        filters.narrow("p.category = %(category)s", category=request.category)
    if request.brand is not None:
        filters.narrow("p.brand = %(brand)s", brand=request.brand)
    for index, tag in enumerate(sorted(request.diet)):
        # A vegan product satisfies "vegetarian" even where only "vegan" was declared.
        implying = sorted(DIET_TAGS.codes_implying([tag]))
        filters.check(f"p.dietary_tags && %(diet_{index})s", None, **{f"diet_{index}": implying})
    if request.allergen_free:
        # Unknown allergen information (NULL) is not "free of"; avoiding gluten means avoiding wheat.
        filters.check("p.allergens IS NOT NULL AND NOT (p.allergens && %(avoid)s)",
                    avoid=sorted(ALLERGENS.codes_implying(request.allergen_free)))
    # ::numeric: compared as float8, the column could not use its index.
    for column in RANGE_COLUMNS:
        low, high = getattr(request, f"{column}_min"), getattr(request, f"{column}_max")
        if low is not None and high is not None and low > high:
            raise InvalidInput(f"{column}_min is greater than {column}_max", details={"field": f"{column}_min"})
        if low is not None:
            filters.check(f"p.{column} >= %({column}_min)s::numeric", column, **{f"{column}_min": low})
        if high is not None:
            filters.check(f"p.{column} <= %({column}_max)s::numeric", column, **{f"{column}_max": high})
    return filters


@dataclass(frozen=True)
class Statement:
    sql: str
    params: dict[str, Any]


def relevance_page(filters: Filters, rank_query: str, pool_size: int, examined: int, after: Cursor | None,
                   fetch: int) -> Statement:
    """The next page of the ranked pool (see the module docstring): the first `pool_size` products that pass the
    checks among the first `examined` the full-text index yields. Name matches weigh most (A), then brand (B),
    category and description (C), ingredients (D); normalisation 1 (by the log of the length) favours concise
    products. (ts_rank_cd would also reward words found together, at eight times the cost per product.)"""
    where, checks = filters.for_lookup()
    keyset = "WHERE (score, id) < (%(after_key)s::real, %(after_id)s)" if after else ""
    page = f"""
        WITH pool AS MATERIALIZED (
            SELECT * FROM (
                SELECT p.id, p.search_tsv, ({checks}) AS passes
                  FROM tenant_products p WHERE {where} LIMIT %(examined)s
            ) candidates WHERE passes LIMIT %(pool_size)s
        ), ranked AS (
            SELECT id, ts_rank(search_tsv, %(rank_query)s::tsquery, 1) AS score FROM pool
        )
        SELECT id, score AS sort_key FROM ranked {keyset} ORDER BY score DESC, id DESC LIMIT %(fetch)s"""
    sql = _with_products(page, "page.sort_key", "page.sort_key DESC, p.id DESC")
    params = {**filters.params, "pool_size": pool_size, "examined": examined, "rank_query": rank_query,
              "fetch": fetch}
    if after:
        params.update(after_key=after.key, after_id=after.id)
    return Statement(sql, params)


def _with_products(page: str, columns: str, order: str) -> str:
    """The products of a page of ids (and its `columns`), read by id once the page is known: the pool or
    collection it was chosen from holds ids and keys, not every column of up to thousands of products (which
    cost a third of a common word's relevance page). Each id reads only its own hash partition."""
    return f"""
        SELECT {PRODUCT_COLUMNS}, {columns} FROM ({page}) AS page
          JOIN tenant_products p ON p.vendor_id = %(vendor_id)s AND p.id = page.id
         ORDER BY {order}"""


def collected_page(filters: Filters, spec: SortSpec, after: Cursor | None, fetch: int, cap: int, *,
                   until: Cursor | None = None) -> Statement:
    """A keyset page of at most `cap` + 1 matches collected, then sorted in memory; each row carries `matched`,
    the number collected: more than `cap` means the page is not exact and must not be used. With `until`, a band:
    only the matches whose (key, id) is at most `until` in the order (never a NULL key)."""
    direction, comparison = ("DESC", "<") if spec.descending else ("ASC", ">")
    params: dict[str, Any] = {**filters.params, "collect": cap + 1, "fetch": fetch}
    where = filters.sql
    if until is not None:
        # Both bounds as one range of the (key, id) index, which the planner ANDs with the full-text matches.
        where += f" AND ({spec.expression}, p.id) {'>=' if spec.descending else '<='} (%(until_key)s, %(until_id)s)"
        params.update(until_key=until.key, until_id=until.id)
        if after:
            where += f" AND ({spec.expression}, p.id) {comparison} (%(after_key)s, %(after_id)s)"
    elif after and after.key is None:
        where += f" AND {spec.expression} IS NULL AND p.id {comparison} %(after_id)s"
    elif after:
        where += (f" AND ({spec.expression} IS NULL"
                  f" OR ({spec.expression}, p.id) {comparison} (%(after_key)s, %(after_id)s))")
    if after:
        params.update(after_key=after.key, after_id=after.id)
    page = f"""
        WITH matches AS MATERIALIZED (
            SELECT p.id, {spec.expression} AS sort_key FROM tenant_products p WHERE {where} LIMIT %(collect)s
        )
        SELECT id, sort_key, count(*) OVER () AS matched FROM matches
         ORDER BY sort_key {direction} NULLS LAST, id {direction} LIMIT %(fetch)s"""
    order = f"page.sort_key {direction} NULLS LAST, p.id {direction}"
    return Statement(_with_products(page, "page.sort_key, page.matched", order), params)


def match_sample(filters: Filters, spec: SortSpec, after: Cursor | None, size: int) -> Statement:
    """The (key, id) of the first `size` matches of the full-text lookup in storage order, a random sample of
    them, that come after `after` in the order and have a key, sorted in the order. Each row carries `drawn`, the
    size of the sample before those two conditions (fewer than `size`: every match was drawn)."""
    direction, comparison = ("DESC", "<") if spec.descending else ("ASC", ">")
    where, _ = filters.for_lookup()
    params: dict[str, Any] = {**filters.params, "size": size}
    keyset = ""
    if after:
        keyset = f"AND (sort_key, id) {comparison} (%(after_key)s, %(after_id)s)"
        params.update(after_key=after.key, after_id=after.id)
    # The LIMIT keeps the draw apart from the conditions on the key: pushed into it, they would let the planner
    # draw along the order's index, the walk that just ran out.
    sql = f"""
        SELECT sort_key, id, drawn FROM (
            SELECT sort_key, id, count(*) OVER () AS drawn FROM (
                SELECT {spec.expression} AS sort_key, p.id FROM tenant_products p WHERE {where} LIMIT %(size)s
            ) draw
        ) sample
         WHERE sort_key IS NOT NULL {keyset}
         ORDER BY sort_key {direction}, id {direction}"""
    return Statement(sql, params)


def walked_page(filters: Filters, spec: SortSpec, after: Cursor | None, fetch: int, budget: int, *,
                nulls: bool) -> Statement:
    """A keyset page walked along the order's index (a range scan per partition, merged), reading at most
    `budget` products of the scope in order and keeping those that pass the checks. The rows with a key
    (`nulls=False`) or, once those are exhausted, the rows without one, in id order.

    Rows carry `beyond_budget`: the walk reads one product more than its budget, and returns it when it gets that
    far, to tell a walk that stopped before the end of the scope from one that read all of it."""
    direction, comparison = ("DESC", "<") if spec.descending else ("ASC", ">")
    params: dict[str, Any] = {**filters.params, "budget": budget, "fetch": fetch}
    if nulls:
        clauses = [f"{spec.expression} IS NULL"]
        order = f"p.id {direction}"
        if after:
            clauses.append(f"p.id {comparison} %(after_id)s")
    else:
        clauses = [f"{spec.expression} IS NOT NULL"] if spec.nullable else []
        order = f"{spec.expression} {direction}, p.id {direction}"
        if after:
            clauses.append(f"({spec.expression}, p.id) {comparison} (%(after_key)s, %(after_id)s)")
    if after:
        params.update(after_key=after.key, after_id=after.id)
    bounded, checks = filters.for_walk(spec.expression)
    where = " AND ".join([bounded, *clauses])
    # The walk is a subquery with ORDER BY and LIMIT, which the checks cannot be pushed into: it stays a walk,
    # and its rows reach the outer LIMIT in order, so the outer query stops as soon as the page is full.
    sql = f"""
        SELECT * FROM (
            SELECT walk.*, row_number() OVER () > %(budget)s AS beyond_budget FROM (
                SELECT {PRODUCT_COLUMNS}, {spec.expression} AS sort_key, ({checks}) AS hit
                  FROM tenant_products p WHERE {where} ORDER BY {order} LIMIT %(budget)s + 1
            ) walk
        ) counted
         WHERE hit OR beyond_budget LIMIT %(fetch)s"""
    return Statement(sql, params)


def facet_counts(filters: Filters, sample: int) -> Statement:
    """The categories of a sample of the matches, and their sets of diet tags (`tags`): the tags a product's
    declared tags imply are the vocabulary's to add, and few products declare a set of their own."""
    sql = f"""
        WITH sample AS MATERIALIZED (
            SELECT p.category, p.dietary_tags FROM tenant_products p WHERE {filters.sql} LIMIT %(sample)s
        )
        SELECT 'category' AS facet, category AS value, NULL::text[] AS tags, count(*) AS count
          FROM sample WHERE category IS NOT NULL GROUP BY category
        UNION ALL
        SELECT 'diet_tags', NULL, dietary_tags, count(*) FROM sample WHERE dietary_tags <> '{{}}' GROUP BY dietary_tags
        UNION ALL
        SELECT 'counted', NULL, NULL, count(*) FROM sample"""
    return Statement(sql, {**filters.params, "sample": sample})
