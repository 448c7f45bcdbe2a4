"""Matching benchmark: exact top-k for many customers, beside the seed's LIMIT-200 SQL and a brute-force exact
SQL query, on the same data in the same run.

1. Loads N products (nutrimatch.demo.catalog) into one vendor as bench/search.py does (COPY into a staging
   table, INSERT … SELECT with ids from entity_uuid(), indexes rebuilt, ANALYZE), bumps catalog_version,
   and creates customers with varied health profiles (nutrimatch.demo.customers) through the health core:
   encrypted, audited.
2. Publishes the vendor's feature snapshot as ingest finalize does (build time, size, the builder's peak
   RSS) and reads it back from S3 (the cold-start path of a new process).
3. With --clients processes calling nutrimatch.matching.service.match_customer exactly as functions/matches.py
   does (profile read + audit row, Redis, snapshot, engine, live-row check), one request at a time each as
   Lambda instances serve (each loads the snapshot from S3 first): one pass over the customers, every request
   a cache miss (uncached), then the same customers again (cached). These are the headline figures. The same
   with --clients threads of one process (sharing one interpreter lock), a lone client (the path without
   contention), and the engine alone.
4. Baselines with the same clients: the seed's match_products_for_customer body (LIMIT 200 then a two-branch
   CASE), and a brute-force exact query: the same score written in SQL, over every eligible row, ORDER BY
   score DESC, id LIMIT k. oracle_agreement is the share of those requests whose top k (ids and order) equals
   the one matching answered.

    .venv/bin/python bench/match.py --products 2000000 --clients 8

Ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import PeakRss, embedded_stack
from bench.ingest import generated_csv
from bench.search import load

TARGET_P95_MS = 25
SINGLE_CLIENT_REQUESTS = 100
SEED_SQL = """
WITH candidate_products AS (
    SELECT p.* FROM products p
     WHERE p.vendor_id = %(vendor)s AND p.status = 'active'
       AND (%(avoid)s::text[] IS NULL OR NOT p.allergens && %(avoid)s::text[])
       AND (%(diet)s::text[] IS NULL OR p.dietary_tags @> %(diet)s::text[])
     LIMIT 200
)
SELECT to_jsonb(cp.*) AS product_json,
       (CASE WHEN 'diabetes' = ANY(%(conditions)s::text[]) THEN
                  GREATEST(0, 100 - (cp.sugar_g::numeric / 25 * 100)) + LEAST(20, cp.fiber_g::numeric * 4)
             WHEN 'hypertension' = ANY(%(conditions)s::text[]) THEN
                  GREATEST(0, 100 - (cp.sodium_mg::numeric / 2300 * 100)) + LEAST(15, cp.protein_g::numeric / 50 * 15)
             ELSE 85 END)::numeric AS health_score,
       ARRAY[CASE WHEN cp.fiber_g > 5 THEN 'High fiber content' END,
             CASE WHEN cp.protein_g > 15 THEN 'Good protein source' END,
             CASE WHEN cp.sodium_mg < 600 THEN 'Low sodium' END,
             CASE WHEN cp.sugar_g < 5 THEN 'Low sugar' END]::text[] AS compatibility_reasons
  FROM candidate_products cp
 ORDER BY health_score DESC, cp.updated_at DESC
 LIMIT %(k)s
"""


def bruteforce_sql(plan: Any, allow_unknown: bool) -> tuple[str, dict[str, Any]]:
    """The engine's score in SQL: each amount per serving bucketed with width_bucket over the same edges, its
    points read from the plan's table; hard constraints on the raw rows; every eligible row scored."""
    from nutrimatch.matching.features import FEATURES, LEVELS, UNKNOWN_LEVEL
    from nutrimatch.vocabulary import DIET_TAGS

    factor = "(CASE WHEN nutrient_basis = 'per_100g' THEN coalesce(serving_size_g::float8, 100) / 100 ELSE 1 END)"
    params: dict[str, Any] = {"table": plan.table.ravel().tolist(), "avoid": sorted(plan.avoid_allergens),
                              "unknown_ok": allow_unknown or not plan.avoid_allergens}
    terms = []
    for index, feature in enumerate(FEATURES):
        column = "coalesce(added_sugar_g, sugar_g)" if feature.name == "added_sugar_g" else feature.name
        params[f"edges{index}"] = list(feature.edges())
        level = f"coalesce(width_bucket({column}::float8 * {factor}, %(edges{index})s::float8[]), {UNKNOWN_LEVEL})"
        terms.append(f"(%(table)s::int[])[{index * LEVELS} + {level} + 1]")
    required = []
    for index, tag in enumerate(sorted(plan.required_diet_tags)):
        params[f"tag{index}"] = sorted(DIET_TAGS.codes_implying([tag]))
        required.append(f"AND dietary_tags && %(tag{index})s::text[]")
    sql = f"""
        SELECT id, {" + ".join(terms)} AS score FROM products
         WHERE vendor_id = %(vendor)s AND status = 'active'
           AND (allergens IS NULL OR NOT allergens && %(avoid)s::text[])
           AND (allergens IS NOT NULL OR %(unknown_ok)s) {" ".join(required)}
         ORDER BY score DESC, id LIMIT %(k)s"""
    return sql, params


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        value = round(values[0], 2) if values else 0.0
        return {"p50": value, "p95": value, "p99": value}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "p99": round(cuts[98], 2)}


def run_clients(clients: int, jobs: list[Any], work: Callable[[Any], Any]) -> tuple[list[float], list[Any]]:
    """Each job once, by `clients` threads; (latencies in ms, results) in job order."""
    pending: queue.Queue[int] = queue.Queue()
    for index in range(len(jobs)):
        pending.put(index)
    latencies: list[float] = [0.0] * len(jobs)
    results: list[Any] = [None] * len(jobs)
    failures: list[BaseException] = []

    def client() -> None:
        while True:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            try:
                results[index] = work(jobs[index])
            except BaseException as error:  # reported after the run
                failures.append(error)
                return
            latencies[index] = (time.perf_counter() - started) * 1000

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return latencies, results


def match_request(vendor_id: uuid.UUID, customer_id: uuid.UUID, k: int) -> Any:
    """One request as functions/matches.py makes it: an api_client asking for a customer's top k."""
    from nutrimatch.api import Caller
    from nutrimatch.audit import RequestInfo
    from nutrimatch.matching.models import MatchQuery
    from nutrimatch.matching.service import match_customer
    from nutrimatch.routes import Role

    caller = Caller(user_id="bench-app", role=Role.API_CLIENT, vendor_id=vendor_id)
    facts = RequestInfo(request_id=str(uuid.uuid4()), ip="192.0.2.8", user_agent="bench/match", justification=None)
    return match_customer(caller, facts, customer_id, MatchQuery(k=k))


def _warm_process(environment: dict[str, str], vendor_id: uuid.UUID, customer_id: uuid.UUID, k: int) -> None:
    """Pool initializer: a client process as a new Lambda instance, its snapshot loaded (from S3) before timing."""
    import os

    from nutrimatch.db import get_database
    from nutrimatch.matching.snapshot_store import process_store

    os.environ.update(environment)
    answer = match_request(vendor_id, customer_id, k)
    # The warm-up request may have been answered from the cache (another process asked first): load anyway.
    process_store().current(get_database(), vendor_id, answer.catalog_version)


def _timed_requests(job: tuple[uuid.UUID, list[uuid.UUID], int, float]) -> list[tuple[float, bool, list[uuid.UUID]]]:
    """(ms, cached, product ids) of each request of one client process, all clients starting together."""
    vendor_id, customer_ids, k, start_at = job
    time.sleep(max(0.0, start_at - time.time()))
    timings = []
    for customer_id in customer_ids:
        started = time.perf_counter()
        answer = match_request(vendor_id, customer_id, k)
        timings.append(((time.perf_counter() - started) * 1000, answer.cached, [m.product.id for m in answer.matches]))
    return timings


def run_processes(pool: Any, clients: int, vendor_id: uuid.UUID, customer_ids: list[uuid.UUID],
                  k: int) -> tuple[list[float], list[bool], dict[uuid.UUID, list[uuid.UUID]]]:
    """Each customer once, by `clients` processes (one request at a time each, as Lambda instances serve)."""
    shares = [customer_ids[i::clients] for i in range(clients)]
    start_at = time.time() + 1.0
    results = pool.map(_timed_requests, [(vendor_id, share, k, start_at) for share in shares])
    latencies, cached, answers = [], [], {}
    for share, timings in zip(shares, results, strict=True):
        for customer_id, (ms, was_cached, ids) in zip(share, timings, strict=True):
            latencies.append(ms)
            cached.append(was_cached)
            answers[customer_id] = ids
    return latencies, cached, answers


def create_customers(vendor_id: uuid.UUID, count: int, seed: int) -> list[tuple[uuid.UUID, Any]]:
    """Customers with demo health profiles, written through the health core; (id, profile) each."""
    from nutrimatch.api import Caller
    from nutrimatch.audit import RequestInfo
    from nutrimatch.customers import health, records
    from nutrimatch.customers.records import NewCustomer
    from nutrimatch.db import get_database, scoped_transaction
    from nutrimatch.demo.customers import generate_health_profile
    from nutrimatch.health import HealthProfile
    from nutrimatch.routes import Role

    clinician = Caller(user_id="bench-clinician", role=Role.CLINICIAN, vendor_id=vendor_id)
    created = []
    for number in range(count):
        request = RequestInfo(request_id=f"bench-{number}", ip=None, user_agent="bench/match", justification=None)
        profile = HealthProfile.model_validate(generate_health_profile(seed * 1_000_003 + number))
        with scoped_transaction(get_database().writer, vendor_id) as conn:
            customer = records.create(conn, clinician, request, NewCustomer(external_id=f"bench-{number:06d}"))
            stored = health.write(conn, clinician, request, customer.id, profile)
        created.append((customer.id, stored))
    return created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=2_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--customers", type=int, default=800, help="one uncached and one cached request each")
    parser.add_argument("--seed-requests", type=int, default=400, help="requests of the seed's LIMIT-200 SQL")
    parser.add_argument("--bruteforce-requests", type=int, default=32, help="requests of the brute-force SQL")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with embedded_stack():
        import psutil
        import psycopg

        from nutrimatch.db import get_database, scoped_transaction
        from nutrimatch.local.aws_stand_in import provision
        from nutrimatch.matching import snapshot_store
        from nutrimatch.matching.engine import rank
        from nutrimatch.matching.scoring import plan_for
        from nutrimatch.settings import get_settings
        from nutrimatch.tenancy import vendors
        from nutrimatch.tenancy.vendors import NewVendor

        settings = get_settings()
        provision(settings)
        database = get_database()
        vendor = vendors.onboard(database, NewVendor(slug=f"bench-match-{uuid.uuid4().hex[:6]}",
                                                     name="Matching benchmark"))
        print(f"loading {args.products:,} products …", flush=True)
        load_timings = load(vendor.id, generated_csv(args.products, 0.0))
        with psycopg.connect(settings.database_admin_url, autocommit=True) as conn:
            conn.execute("UPDATE vendors SET catalog_version = catalog_version + 1 WHERE id = %s", (vendor.id,))
        print(f"loaded: {json.dumps(load_timings)}", flush=True)
        started = time.perf_counter()
        # one set for the threads, another (and a warm-up customer) for the processes, a few for a lone client:
        # each pass starts uncached
        customers = create_customers(vendor.id, 2 * args.customers + 1 + SINGLE_CLIENT_REQUESTS, args.seed)
        print(f"{len(customers)} customers with health profiles in {time.perf_counter() - started:.1f} s", flush=True)

        before_mib = psutil.Process().memory_info().rss / 2**20
        with PeakRss() as build_rss:
            published = snapshot_store.publish_snapshot(vendor.id)
        started = time.perf_counter()
        reloaded = snapshot_store.load_published(settings, vendor.id, published.catalog_version)
        load_seconds = time.perf_counter() - started
        assert reloaded is not None
        assert reloaded.size == published.size
        snapshot_mb = published.nbytes / 1e6
        print(f"snapshot: {published.size:,} active products, {snapshot_mb:.1f} MB, built in "
              f"{published.build_seconds:.1f} s (process peak RSS {build_rss.peak_mib} MiB), "
              f"loaded from S3 in {load_seconds:.2f} s", flush=True)

        def match(customer: tuple[uuid.UUID, Any]) -> Any:
            return match_request(vendor.id, customer[0], args.k)

        single_ms, _ = run_clients(1, customers[-SINGLE_CLIENT_REQUESTS:], match)
        threaded = customers[:args.customers]
        uncached_ms, answers = run_clients(args.clients, threaded, match)
        assert not any(answer.cached for answer in answers), "the uncached pass hit the cache"
        cached_ms, again = run_clients(args.clients, threaded, match)
        assert all(answer.cached for answer in again), "the cached pass missed the cache"

        apart = [customer_id for customer_id, _ in customers[args.customers:2 * args.customers + 1]]
        with multiprocessing.get_context("spawn").Pool(
                args.clients, initializer=_warm_process,
                initargs=(dict(os.environ), vendor.id, apart[0], args.k)) as pool:
            process_ms, process_hits, _ = run_processes(pool, args.clients, vendor.id, apart[1:], args.k)
            assert not any(process_hits), "the uncached pass hit the cache"
            process_cached_ms, process_hits, _ = run_processes(pool, args.clients, vendor.id, apart[1:], args.k)
            assert all(process_hits), "the cached pass missed the cache"

        plans = [plan_for(stored.profile.conditions, stored.limits) for _, stored in threaded]
        engine_ms, scored = [], []
        for plan in plans:  # the engine alone, one request at a time: where the uncached time goes
            started = time.perf_counter()
            ranking = rank(published, plan, k=args.k)
            engine_ms.append((time.perf_counter() - started) * 1000)
            scored.append(ranking.scored_products)

        def seed_query(index: int) -> Any:
            profile = customers[index][1].profile
            with scoped_transaction(database.writer, vendor.id, read_only=True) as conn:
                return conn.execute(SEED_SQL, {
                    "vendor": vendor.id, "k": args.k, "conditions": sorted(profile.conditions),
                    "avoid": sorted(profile.avoid_allergens) or None,
                    "diet": sorted(profile.diet_goals) or None}).fetchall()

        seed_jobs = [i % len(threaded) for i in range(args.seed_requests)]
        seed_ms, _ = run_clients(args.clients, seed_jobs, seed_query)

        def bruteforce(index: int) -> list[uuid.UUID]:
            sql, params = bruteforce_sql(plans[index], vendor.allow_unknown_allergens)
            with scoped_transaction(database.writer, vendor.id, read_only=True) as conn:
                rows = conn.execute(sql, {**params, "vendor": vendor.id, "k": args.k}).fetchall()
            return [row["id"] for row in rows]

        step = max(1, len(threaded) // args.bruteforce_requests)
        brute_jobs = list(range(0, len(threaded), step))[:args.bruteforce_requests]
        print(f"brute-force SQL for {len(brute_jobs)} requests …", flush=True)
        brute_ms, brute_ids = run_clients(args.clients, brute_jobs, bruteforce)
        agreeing = sum(ids == [m.product.id for m in answers[index].matches]
                       for index, ids in zip(brute_jobs, brute_ids, strict=True))

    ours, cached, seed, brute = (percentiles(uncached_ms), percentiles(cached_ms), percentiles(seed_ms),
                                 percentiles(brute_ms))
    engine, apart_ours, apart_cached = percentiles(engine_ms), percentiles(process_ms), percentiles(process_cached_ms)
    single = percentiles(single_ms)
    print(f"\n{'exact top-' + str(args.k) + ', ' + format(args.products, ',') + ' products':<44}"
          f"{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for label, count, figures in (
            (f"matching, uncached ({args.clients} processes)", len(process_ms), apart_ours),
            (f"matching, cached ({args.clients} processes)", len(process_cached_ms), apart_cached),
            (f"matching, uncached ({args.clients} threads)", len(uncached_ms), ours),
            (f"matching, cached ({args.clients} threads)", len(cached_ms), cached),
            ("matching, uncached (1 client)", len(single_ms), single),
            ("  engine alone (1 client)", len(engine_ms), engine),
            (f"seed LIMIT-200 SQL ({args.clients} clients)", len(seed_ms), seed),
            (f"brute-force exact SQL ({args.clients} clients)", len(brute_ms), brute)):
        print(f"{label:<44}{count:>6}{figures['p50']:>9}{figures['p95']:>9}{figures['p99']:>9}")
    agreement = agreeing / max(1, len(brute_jobs))
    print(f"oracle agreement: {agreeing}/{len(brute_jobs)}; target p95 ≤ {TARGET_P95_MS} ms uncached: "
          f"{'met' if apart_ours['p95'] <= TARGET_P95_MS else 'NOT met'}; products scored per request (median) "
          f"{statistics.median(scored):,.0f}")
    result = {
        "products": args.products, "clients": args.clients, "k": args.k, "customers": len(customers),
        "p50_ms": apart_ours["p50"], "p95_ms": apart_ours["p95"], "p99_ms": apart_ours["p99"],
        "p50_ms_cached": apart_cached["p50"], "p95_ms_cached": apart_cached["p95"],
        "p99_ms_cached": apart_cached["p99"],
        "p50_ms_threads": ours["p50"], "p95_ms_threads": ours["p95"], "p99_ms_threads": ours["p99"],
        "p50_ms_cached_threads": cached["p50"], "p95_ms_cached_threads": cached["p95"],
        "p50_ms_one_client": single["p50"], "p95_ms_one_client": single["p95"],
        "p50_ms_engine_alone": engine["p50"], "p95_ms_engine_alone": engine["p95"],
        "p50_ms_seed_limit200": seed["p50"], "p95_ms_seed_limit200": seed["p95"],
        "p50_ms_bruteforce": brute["p50"], "p95_ms_bruteforce": brute["p95"],
        "oracle_agreement": round(agreement, 4), "bruteforce_requests": len(brute_jobs),
        "scored_products_median": statistics.median(scored),
        "snapshot_products": published.size, "snapshot_mb": round(snapshot_mb, 1),
        "snapshot_mb_per_million": round(snapshot_mb / max(published.size, 1) * 1e6, 1),
        "snapshot_build_s": published.build_seconds, "snapshot_s3_load_s": round(load_seconds, 2),
        "snapshot_build_peak_rss_mib": build_rss.peak_mib,
        "snapshot_build_rss_growth_mib": round(build_rss.peak_mib - before_mib, 1),
        "load": load_timings,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
