"""Search benchmark: a realistic query mix through the handler's core call on the replica, beside plain ILIKE.

1. Loads N products (nutrimatch.demo.catalog, Zipf-distributed brands, recipes and descriptors) into one
   vendor: COPY into an unlogged staging table, then INSERT … SELECT with ids from entity_uuid() into the
   vendor's partition, detached so its indexes are built once after the load (each build is timed: the ingest
   cost of each search index), re-attached and analyzed; then waits until the replica has replayed it all.
2. Derives the query mix from the catalog's own words: single words across the frequency range (common words
   match hundreds of thousands of rows at 2M), two words of one product name, "quoted phrases", prefixes
   being typed, words with diet/allergen/nutrient/price filters, facets, exact sorts, and browses (no text).
3. Runs it for --seconds with --clients processes, each calling nutrimatch.search.service.search_products
   with the process-wide replica router, exactly as functions/search.py does; then the baseline: a plain
   ILIKE '%word%' over name and description (name matches first) for the mix's words, same clients, same data.

    .venv/bin/python bench/search.py --products 2000000 --clients 8

Ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import embedded_stack
from bench.ingest import generated_csv

TARGET_P95_MS = 50
NUMERIC_COLUMNS = {"price", "serving_size_g", "calories", "protein_g", "carbs_g", "fat_g", "saturated_fat_g",
                   "fiber_g", "sugar_g", "added_sugar_g", "sodium_mg", "potassium_mg"}
ILIKE_SQL = """
    SELECT p.id, p.name FROM products p
     WHERE p.vendor_id = %(vendor)s AND p.status = 'active'
       AND (p.name ILIKE %(pattern)s OR p.description ILIKE %(pattern)s)
     ORDER BY p.name ILIKE %(pattern)s DESC, lower(p.name) LIMIT 20"""


# --- loading ------------------------------------------------------------------------------------------------


def _product_select(vendor_id: uuid.UUID, columns: tuple[str, ...]) -> str:
    def cast(column: str) -> str:
        if column in NUMERIC_COLUMNS:
            return f"nullif({column}, '')::numeric"
        if column == "allergens":  # ';'-separated codes; "none" declares none, an empty cell says nothing
            return ("CASE allergens WHEN '' THEN NULL WHEN 'none' THEN '{}'::text[] "
                    "ELSE string_to_array(allergens, ';') END")
        if column == "dietary_tags":
            return "coalesce(string_to_array(nullif(dietary_tags, ''), ';'), '{}')"
        return f"nullif({column}, '')" if column != "currency" else f"coalesce(nullif({column}, ''), 'USD')"

    return (f"SELECT entity_uuid('{vendor_id}'::uuid, external_id), '{vendor_id}'::uuid, "
            + ", ".join(cast(c) for c in columns) + " FROM bench_search_staging")


def load(vendor_id: uuid.UUID, csv_path: Path) -> dict[str, Any]:
    import psycopg

    from nutrimatch.demo.catalog import PRODUCT_COLUMNS
    from nutrimatch.settings import get_settings

    admin_url = get_settings().database_admin_url
    timings: dict[str, Any] = {}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        partition = conn.execute("SELECT vendor_partition_name('products', %s)", (vendor_id,)).fetchone()[0]
        conn.execute("DROP TABLE IF EXISTS bench_search_staging")
        conn.execute(f"CREATE UNLOGGED TABLE bench_search_staging ({', '.join(f'{c} text' for c in PRODUCT_COLUMNS)})")
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(
                "COPY bench_search_staging FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, \
                csv_path.open("rb") as file:
            while block := file.read(1 << 20):
                copy.write(block)
        timings["copy_s"] = round(time.perf_counter() - started, 1)

        indexes = conn.execute("""
            SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition, i.indisprimary AS primary_key
              FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'products'::regclass ORDER BY c.relname""").fetchall()
        own_indexes = [_partition_index(conn, partition, name) for (name, _, primary_key) in indexes
                       if not primary_key]
        conn.execute(f"ALTER TABLE products DETACH PARTITION {partition}")
        conn.execute(f"ALTER TABLE {partition} DROP CONSTRAINT {partition}_pkey")
        for index in own_indexes:
            conn.execute(f"DROP INDEX {index}")
        started = time.perf_counter()
        conn.execute(f"INSERT INTO {partition} (id, vendor_id, {', '.join(PRODUCT_COLUMNS)}) "
                     + _product_select(vendor_id, PRODUCT_COLUMNS))
        timings["insert_s"] = round(time.perf_counter() - started, 1)
        conn.execute("DROP TABLE bench_search_staging")

        timings["index_build_s"] = {}
        for (name, definition, primary_key) in indexes:
            started = time.perf_counter()
            if primary_key:
                conn.execute(f"ALTER TABLE {partition} ADD PRIMARY KEY (vendor_id, id)")
            else:
                conn.execute(re.sub(r"ON ONLY \S+", f"ON {partition}", definition.replace(f"INDEX {name} ", "INDEX ")))
            timings["index_build_s"][name] = round(time.perf_counter() - started, 2)
        conn.execute(f"ALTER TABLE products ATTACH PARTITION {partition} FOR VALUES IN ('{vendor_id}')")
        started = time.perf_counter()
        conn.execute(f"ANALYZE {partition}")
        timings["analyze_s"] = round(time.perf_counter() - started, 1)
    return timings


def _partition_index(conn: Any, partition: str, parent_index: str) -> str:
    """The vendor partition's index attached to the given index of products."""
    row = conn.execute("""
        SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          JOIN pg_index i ON i.indexrelid = c.oid
         WHERE h.inhparent = %s::regclass AND i.indrelid = %s::regclass""", (parent_index, partition)).fetchone()
    assert row is not None, parent_index
    return str(row[0])


def wait_for_replica(timeout: float = 1800) -> float:
    from nutrimatch.db.replica import wait_until_replayed
    from nutrimatch.settings import get_settings

    settings = get_settings()
    assert settings.database_replica_url
    try:
        return round(wait_until_replayed(settings.database_admin_url, settings.database_replica_url, timeout), 1)
    except TimeoutError as error:
        raise SystemExit(str(error)) from error


# --- the query mix ------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]{3,}")
STOP = {"and", "the", "with", "from", "for", "made", "inspired", "featuring", "starring", "finished", "blending",
        "enjoy", "anytime", "taste", "simple", "ingredients", "sourced", "near", "family", "recipe", "crafted"}


def query_mix(vendor_id: uuid.UUID, count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """(kind, search parameters) drawn from words, names, brands and categories sampled from the catalog."""
    from nutrimatch.db import get_database, scoped_transaction

    with scoped_transaction(get_database().writer, vendor_id, read_only=True) as conn:
        sample = conn.execute("""SELECT name, description, brand, category FROM products TABLESAMPLE SYSTEM (2)
                                  WHERE vendor_id = %s LIMIT 20000""", (vendor_id,)).fetchall()
    frequency = Counter(word for row in sample for word in set(_WORD.findall(
        f"{row['name']} {row['description'] or ''}".lower())) if word not in STOP)
    ranked = [word for word, _ in frequency.most_common()]
    common, middle, rare = ranked[:40], ranked[40:400], ranked[400:] or ranked[-50:]
    names = [row["name"] for row in sample]
    brands = [row["brand"] for row in sample if row["brand"]]
    categories = sorted({row["category"] for row in sample if row["category"]})
    rng = random.Random(seed)

    def word() -> str:
        band = rng.choices((common, middle, rare), weights=(4, 4, 2))[0]
        return rng.choice(band)

    def name_words() -> list[str]:
        return [w for w in _WORD.findall(rng.choice(names).lower()) if w not in STOP] or [word()]

    def a_filter() -> dict[str, Any]:
        return rng.choice([
            {"diet": rng.choice(["vegan", "gluten_free", "vegetarian", "keto", "organic", "dairy_free"])},
            {"allergen_free": rng.choice(["milk", "peanuts,tree_nuts", "gluten", "soybeans"])},
            {"calories_max": rng.choice([100, 200, 300])},
            {"protein_g_min": rng.choice([5, 10, 20])},
            {"price_min": 2, "price_max": rng.choice([4, 6, 10])},
            {"sugar_g_max": 5, "sodium_mg_max": 300},
        ])

    def typing(text: str) -> str:
        """Text cut inside its last word, as type-ahead sends it (at least 2 letters of that word)."""
        last = text.rsplit(" ", 1)[-1]
        return text[: len(text) - len(last) + rng.randint(2, max(2, len(last) - 1))]

    makers = {
        "word": lambda: {"q": word()},
        "two_words": lambda: {"q": " ".join(name_words()[:2])},
        "phrase": lambda: {"q": '"' + " ".join(name_words()[:2]) + '"'},
        "prefix": lambda: {"q": typing(rng.choice(common + middle))},
        "words_prefix": lambda: {"q": typing(" ".join(name_words()[:2]))},
        "word_filtered": lambda: {"q": word(), **a_filter()},
        "word_sorted": lambda: {"q": word(), "sort": rng.choice(["price_asc", "price_desc", "protein_g_desc",
                                                                   "sugar_g_asc"])},
        "word_facets": lambda: {"q": word(), "facets": "diet_tags,category"},
        "brand": lambda: {"brand": rng.choice(brands), "sort": rng.choice(["name", "price_asc"])},
        "browse": lambda: {**rng.choice([{"category": rng.choice(categories)}, a_filter(), {}]),
                           "sort": rng.choice(["name", "price_asc", "price_desc"])},
    }
    weights = {"word": 20, "two_words": 12, "phrase": 5, "prefix": 15, "words_prefix": 8, "word_filtered": 15,
               "word_sorted": 5, "word_facets": 5, "brand": 5, "browse": 10}
    kinds = rng.choices(list(weights), weights=list(weights.values()), k=count)
    return [(kind, makers[kind]()) for kind in kinds]


# --- clients ------------------------------------------------------------------------------------------------


def _client(job: tuple[str, list[tuple[str, dict[str, Any]]], float, float, str]) -> list[tuple[str, float, str]]:
    vendor, queries, warmup_until, stop_at, mode = job
    from nutrimatch.db import get_database, scoped_transaction
    from nutrimatch.db.routing import get_router
    from nutrimatch.errors import DependencyUnavailable, InvalidInput
    from nutrimatch.search import service
    from nutrimatch.search.models import SearchRequest

    vendor_id = uuid.UUID(vendor)
    timings: list[tuple[str, float, str]] = []
    for index in range(10**9):
        kind, params = queries[index % len(queries)]
        started = time.perf_counter()
        if mode == "search":
            try:
                served_by = service.search_products(get_router(), vendor_id, SearchRequest(**params)).served_by
            except InvalidInput:  # a 422: an exact order over too many matches
                served_by = "refused"
            except DependencyUnavailable:  # a 503: the statement timeout
                served_by = "timed_out"
        else:
            pattern = f"%{params['q'].strip(chr(34)).split()[0]}%"
            reader = get_database().reader
            assert reader is not None
            with scoped_transaction(reader, vendor_id, read_only=True) as conn:
                conn.execute(ILIKE_SQL, {"vendor": vendor_id, "pattern": pattern}, prepare=False).fetchall()
            served_by = "replica"
        now = time.perf_counter()
        if time.time() >= warmup_until:
            timings.append((kind, (now - started) * 1000, served_by))
        if time.time() >= stop_at:
            return timings
    return timings


def run_clients(vendor_id: uuid.UUID, queries: list[tuple[str, dict[str, Any]]], clients: int, seconds: float,
                warmup: float, mode: str) -> list[tuple[str, float, str]]:
    share = max(1, len(queries) // clients)
    start = time.time()
    jobs = [(str(vendor_id), queries[i * share:(i + 1) * share] or queries, start + warmup, start + warmup + seconds,
             mode) for i in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        return [timing for result in pool.map(_client, jobs) for timing in result]


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        value = round(values[0], 2) if values else float("nan")
        return {"p50": value, "p95": value, "p99": value}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "p99": round(cuts[98], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=2_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30, help="measured time of the search mix")
    parser.add_argument("--ilike-seconds", type=float, default=15, help="measured time of the ILIKE baseline")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with embedded_stack():
        from nutrimatch.db import get_database
        from nutrimatch.settings import get_settings
        from nutrimatch.tenancy import vendors
        from nutrimatch.tenancy.vendors import NewVendor

        vendor = vendors.onboard(get_database(), NewVendor(slug=f"bench-search-{uuid.uuid4().hex[:6]}",
                                                           name="Search benchmark"))
        csv_path = generated_csv(args.products, 0.0)
        print(f"loading {args.products:,} products …", flush=True)
        timings = load(vendor.id, csv_path)
        timings["replica_catch_up_s"] = wait_for_replica()
        print(f"loaded: {json.dumps(timings)}", flush=True)

        queries = query_mix(vendor.id, 4000, args.seed)
        get_database().close()  # the clients are separate processes with their own pools
        results = run_clients(vendor.id, queries, args.clients, args.seconds, 3, "search")
        word_queries = [q for q in queries if q[1].get("q")]
        baseline = run_clients(vendor.id, word_queries, args.clients, args.ilike_seconds, 0, "ilike")

    overall = percentiles([ms for _, ms, _ in results])
    ilike = percentiles([ms for _, ms, _ in baseline])
    print(f"\n{'kind':<14}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for kind in sorted({k for k, _, _ in results}):
        figures = percentiles([ms for k, ms, _ in results if k == kind])
        count = sum(1 for k, _, _ in results if k == kind)
        print(f"{kind:<14}{count:>7}{figures['p50']:>9}{figures['p95']:>9}{figures['p99']:>9}")
    print(f"{'all':<14}{len(results):>7}{overall['p50']:>9}{overall['p95']:>9}{overall['p99']:>9}")
    print(f"{'ILIKE':<14}{len(baseline):>7}{ilike['p50']:>9}{ilike['p95']:>9}{ilike['p99']:>9}")
    answered = [served_by for *_, served_by in results if served_by in ("replica", "primary")]
    on_replica = sum(1 for served_by in answered if served_by == "replica") / max(1, len(answered))
    settings = get_settings()
    result = {
        "products": args.products, "clients": args.clients, "queries": len(results),
        "qps": round(len(results) / args.seconds, 1), "p50_ms": overall["p50"], "p95_ms": overall["p95"],
        "p99_ms": overall["p99"], "p50_ms_ilike": ilike["p50"], "p95_ms_ilike": ilike["p95"],
        "ilike_queries": len(baseline), "target_p95_ms": TARGET_P95_MS,
        "served_by_replica": round(on_replica, 3),
        "refused_422": sum(1 for *_, served_by in results if served_by == "refused"),
        "timed_out_503": sum(1 for *_, served_by in results if served_by == "timed_out"),
        "rank_candidates": settings.search_rank_candidates, "sort_candidates": settings.search_sort_candidates,
        "per_kind_p95_ms": {kind: percentiles([ms for k, ms, _ in results if k == kind])["p95"]
                            for kind in sorted({k for k, _, _ in results})},
        "load": timings,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
