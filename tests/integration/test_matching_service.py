"""Matching over real PostgreSQL, Redis and (moto) S3: snapshot from the database, audit, cache, staleness."""

from __future__ import annotations

import random
import re
import uuid
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest

from nutrimatch import aws
from nutrimatch.api import Caller
from nutrimatch.audit import RequestInfo
from nutrimatch.customers import health, records
from nutrimatch.customers.records import NewCustomer
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.health import HealthProfile, derive_limits
from nutrimatch.health.profile import CONDITIONS
from nutrimatch.ingest.finalize import mark_failed
from nutrimatch.ingest.load import load_chunk
from nutrimatch.ingest.merge import merge_chunk, prepare_merge
from nutrimatch.ingest.plan import plan
from nutrimatch.ingest.service import cancel_job
from nutrimatch.matching import oracle, snapshot_store
from nutrimatch.matching.engine import Filters, rank
from nutrimatch.matching.models import MatchQuery
from nutrimatch.matching.scoring import plan_for
from nutrimatch.matching.service import HealthProfileMissing, match_customer
from nutrimatch.matching.snapshot_store import SnapshotStore, consistent_read
from nutrimatch.routes import Role
from nutrimatch.settings import get_settings
from nutrimatch.vocabulary import ALLERGENS, DIET_TAGS
from tests.integration.ingest_support import create_uploaded_job

# Accents and capitals: SQL and Python must order categories alike (the snapshot numbers them in that order).
CATEGORIES = ("bakery", "dairy", "snacks", "Épicerie fine", "Zoo treats", "épicerie")
NUTRIENTS = {"sodium_mg": 350, "added_sugar_g": 4, "sugar_g": 8, "saturated_fat_g": 2.5, "carbs_g": 25,
             "potassium_mg": 250, "calories": 200, "fiber_g": 3, "protein_g": 8, "fat_g": 7}
_INSERT = """
INSERT INTO products (id, vendor_id, external_id, name, brand, category, price, nutrient_basis, serving_size_g,
                      calories, protein_g, carbs_g, fat_g, saturated_fat_g, fiber_g, sugar_g, added_sugar_g,
                      sodium_mg, potassium_mg, allergens, dietary_tags, status)
VALUES (entity_uuid(%(vendor_id)s, %(external_id)s), %(vendor_id)s, %(external_id)s, %(name)s, 'Brand',
        %(category)s, %(price)s, %(nutrient_basis)s, %(serving_size_g)s, %(calories)s, %(protein_g)s, %(carbs_g)s,
        %(fat_g)s, %(saturated_fat_g)s, %(fiber_g)s, %(sugar_g)s, %(added_sugar_g)s, %(sodium_mg)s,
        %(potassium_mg)s, %(allergens)s, %(dietary_tags)s, %(status)s)
"""


def random_products(rng: random.Random, count: int) -> list[dict[str, Any]]:
    def amount(typical: float, scale: float) -> Decimal | None:
        if rng.random() < 0.06:
            return None
        return Decimal(0) if rng.random() < 0.04 else Decimal(f"{typical * scale * rng.lognormvariate(0, 0.5):.2f}")

    products = []
    for n in range(count):
        scale = rng.lognormvariate(0, 0.6)
        products.append({
            "external_id": f"P-{n:05d}", "name": f"Product {n}", "category": rng.choice([*CATEGORIES, None]),
            "price": rng.choice([None, Decimal(f"{rng.uniform(0.5, 30):.2f}"), Decimal("4.99")]),
            "nutrient_basis": rng.choice(["per_serving", "per_100g"]),
            "serving_size_g": rng.choice([None, Decimal("30"), Decimal("55.50")]),
            "allergens": None if rng.random() < 0.05 else rng.sample(sorted(ALLERGENS), rng.choice([0, 0, 1, 2])),
            "dietary_tags": rng.sample(sorted(DIET_TAGS), rng.choice([0, 1, 2, 3])),
            "status": rng.choice(["active"] * 8 + ["retired", "draft"]),
            **{name: amount(typical, scale) for name, typical in NUTRIENTS.items()},
        })
    return products


def load_catalog(admin_url: str, vendor_id: UUID, products: list[dict[str, Any]]) -> None:
    """Products written as ingestion leaves them: rows in the vendor's partitions, then a new catalog version."""
    with psycopg.connect(admin_url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.executemany(_INSERT, [{**p, "vendor_id": vendor_id} for p in products])
        cursor.execute("UPDATE vendors SET catalog_version = catalog_version + 1 WHERE id = %s", (vendor_id,))


def catalog_rows(vendor_id: UUID) -> list[dict[str, Any]]:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return conn.execute("SELECT * FROM products WHERE vendor_id = %s", (vendor_id,)).fetchall()


def clinician(vendor_id: UUID) -> Caller:
    return Caller(user_id="dr-who", role=Role.CLINICIAN, vendor_id=vendor_id)


def request_facts() -> RequestInfo:
    return RequestInfo(request_id=str(uuid.uuid4()), ip="192.0.2.1", user_agent="pytest", justification=None)


def new_customer(vendor_id: UUID, profile: dict[str, Any] | None) -> UUID:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        customer = records.create(conn, clinician(vendor_id), request_facts(),
                                  NewCustomer(external_id=f"c-{uuid.uuid4().hex}"))
        if profile is not None:
            health.write(conn, clinician(vendor_id), request_facts(), customer.id,
                         HealthProfile.model_validate(profile))
    return customer.id


def audit_rows(vendor_id: UUID, action: str) -> list[dict[str, Any]]:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return conn.execute("SELECT * FROM audit_log WHERE vendor_id = %s AND action = %s ORDER BY seq",
                            (vendor_id, action)).fetchall()


PROFILE = {"height_cm": 168, "weight_kg": 81, "age": 58, "sex": "female", "activity_level": "light",
           "conditions": ["hypertension", "diabetes_type_2"], "avoid_allergens": ["peanuts"], "diet_goals": []}


def test_engine_over_database_rows_equals_the_oracle(database, two_vendors):
    vendor, other = two_vendors
    load_catalog(database.admin_url, vendor.id, random_products(random.Random(11), 400))
    load_catalog(database.admin_url, other.id, random_products(random.Random(12), 50))
    with consistent_read(get_database(), vendor.id) as conn:
        features = snapshot_store.snapshot.build(conn, vendor.id)
    rows = catalog_rows(vendor.id)
    assert (features.catalog_version, features.size) == (1, sum(r["status"] == "active" for r in rows))
    rng = random.Random(3)
    for _ in range(25):
        profile = HealthProfile(
            height_cm=rng.randint(150, 195), weight_kg=rng.randint(50, 120), age=rng.randint(18, 85),
            sex=rng.choice(["female", "male"]), conditions=frozenset(rng.sample(CONDITIONS, rng.randint(0, 3))),
            avoid_allergens=frozenset(rng.sample(sorted(ALLERGENS), rng.randint(0, 2))),
            diet_goals=frozenset(rng.sample(["vegetarian", "gluten_free", "kosher"], rng.randint(0, 1))))
        plan = plan_for(profile.conditions, derive_limits(profile, today=date(2026, 11, 1)))
        filters = Filters(category=rng.choice([None, *CATEGORIES]), max_price=rng.choice([None, Decimal("10.00")]))
        allow = rng.random() < 0.3
        ranking = rank(features, plan, k=rng.randint(1, 40), filters=filters, allow_unknown_allergens=allow)
        expected = oracle.top_k(rows, plan, k=len(ranking.items) or 40, filters=filters,
                                allow_unknown_allergens=allow)
        assert [(item.product_id, item.score) for item in ranking.items] == expected[:len(ranking.items)]
        assert ranking.eligible_count == oracle.eligible_count(rows, plan, filters=filters,
                                                               allow_unknown_allergens=allow)


def test_every_match_is_audited_cached_and_never_stale(database, two_vendors, redis_client):
    vendor, _ = two_vendors
    load_catalog(database.admin_url, vendor.id, random_products(random.Random(5), 300))
    customer = new_customer(vendor.id, PROFILE)
    query = MatchQuery(k=10)

    first = match_customer(clinician(vendor.id), request_facts(), customer, query)
    assert not first.cached and len(first.matches) == 10
    assert (first.catalog_version, first.profile_version) == (1, 1)
    assert first.allergen_exclusions == ["peanuts"]
    assert first.health_constraints_applied == ["diabetes_type_2", "hypertension"]
    assert all(match.reasons for match in first.matches)
    assert all("peanuts" not in (match.product.allergens or []) for match in first.matches)
    again = match_customer(clinician(vendor.id), request_facts(), customer, query)
    assert again.cached and again.matches == first.matches

    audited = audit_rows(vendor.id, "health_profile.matched")
    assert len(audited) == 2  # cached or not, each match is an audited access
    assert {(row["entity"], row["entity_id"], row["actor_user_id"], row["actor_role"]) for row in audited} == {
        ("customer_health_profile", str(customer), "dr-who", "clinician")}

    keys = [key.decode() for key in redis_client.keys("nm:match:*")]
    # Ids, versions, k and a digest of the filters: nothing of the profile.
    assert len(keys) == 1 and re.fullmatch(
        rf"nm:match:s\d+:{vendor.id}:{customer}:p1:c1\.0:u0:k10:f[0-9a-f]{{16}}", keys[0]), keys

    # A new catalog version: the cached answer is not served, the new catalog is.
    load_catalog(database.admin_url, vendor.id, [{**random_products(random.Random(6), 1)[0], "external_id": "NEW",
                                                  "status": "active", "allergens": [], "dietary_tags": []}])
    after_ingest = match_customer(clinician(vendor.id), request_facts(), customer, query)
    assert not after_ingest.cached and after_ingest.catalog_version == 2

    # A profile write: the cached answer is not served either; the new profile's constraints apply.
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        health.write(conn, clinician(vendor.id), request_facts(), customer,
                     HealthProfile.model_validate({**PROFILE, "avoid_allergens": ["milk", "peanuts"]}))
    after_write = match_customer(clinician(vendor.id), request_facts(), customer, query)
    assert not after_write.cached and after_write.profile_version == 2
    assert after_write.allergen_exclusions == ["milk", "peanuts"]
    assert all(not {"milk", "peanuts"} & set(match.product.allergens or ["unknown"]) for match in after_write.matches)
    assert len(audit_rows(vendor.id, "health_profile.matched")) == 4


def test_a_product_changed_after_the_snapshot_is_never_served(database, two_vendors, redis_client):
    """Mid-ingest, rows change before the catalog version does: the live-row check drops what became unsafe."""
    vendor, _ = two_vendors
    load_catalog(database.admin_url, vendor.id, random_products(random.Random(8), 200))
    customer = new_customer(vendor.id, PROFILE)
    ranked = [m.product.id for m in match_customer(clinician(vendor.id), request_facts(), customer,
                                                   MatchQuery(k=7)).matches]
    best = match_customer(clinician(vendor.id), request_facts(), customer, MatchQuery(k=5)).matches[0].product
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("UPDATE products SET allergens = '{peanuts}' WHERE vendor_id = %s AND id = %s",
                     (vendor.id, best.id))
    redis_client.flushdb()
    again = match_customer(clinician(vendor.id), request_facts(), customer, MatchQuery(k=5))
    assert best.id not in {match.product.id for match in again.matches}
    assert [match.product.id for match in again.matches] == ranked[1:6]  # the next in rank took its place


def test_a_cached_answer_is_not_served_once_an_ingestion_made_one_of_its_products_unsafe(
        database, two_vendors, redis_client, aws_resources):
    """An upsert's chunks change live rows before the job announces a new catalog version, and a job may never
    announce one (cancelled or failed after merging): the cache must not keep serving what a chunk changed."""
    vendor, _ = two_vendors
    load_catalog(database.admin_url, vendor.id, random_products(random.Random(8), 200))
    customer = new_customer(vendor.id, PROFILE)
    first = match_customer(clinician(vendor.id), request_facts(), customer, MatchQuery(k=5))
    assert match_customer(clinician(vendor.id), request_facts(), customer, MatchQuery(k=5)).cached
    best = first.matches[0].product

    # The vendor's file now declares peanuts in the best product; the job merges it and stops before finalizing.
    _merge_without_finalizing(vendor.id, f"external_id,name,allergens\n{best.external_id},{best.name},peanuts\n")

    again = match_customer(clinician(vendor.id), request_facts(), customer, MatchQuery(k=5))
    assert again.catalog_version == first.catalog_version  # no new version was announced
    assert not again.cached
    assert best.id not in {match.product.id for match in again.matches}


@pytest.mark.parametrize("stop", ["cancelled", "failed"])
def test_rows_merged_by_an_upsert_that_stopped_are_ranked(database, two_vendors, redis_client, aws_resources, stop):
    vendor, _ = two_vendors
    load_catalog(database.admin_url, vendor.id, random_products(random.Random(8), 200))
    customer = new_customer(vendor.id, PROFILE)
    first = match_customer(clinician(vendor.id), request_facts(), customer, MatchQuery(k=5))
    job_id = _merge_without_finalizing(vendor.id, "external_id,name,calories,allergens\nNEW-1,Plain oats,150,none\n")
    if stop == "cancelled":
        with scoped_transaction(get_database().writer, vendor.id) as conn:
            assert cancel_job(conn, aws.client("s3"), vendor.id, job_id).status == "cancelled"
    else:
        assert mark_failed(get_database(), job_id, vendor.id, {"Error": "States.Timeout"})
    again = match_customer(clinician(vendor.id), request_facts(), customer, MatchQuery(k=5))
    assert again.catalog_version == first.catalog_version + 1  # what merged is live: announced
    assert again.eligible_count == first.eligible_count + 1


def _merge_without_finalizing(vendor_id: UUID, csv: str) -> UUID:
    """An upsert job's steps up to its merges: its rows are live, its catalog version not announced."""
    uploaded = create_uploaded_job(vendor_id, csv.encode())
    settings, s3 = get_settings(), aws.client("s3")
    chunks = plan(settings, get_database(), s3, uploaded.job_id, vendor_id)["chunks"]
    for chunk in chunks:
        load_chunk(get_database(), s3, uploaded.job_id, vendor_id, chunk["chunk_no"])
    assert prepare_merge(settings, get_database(), uploaded.job_id, vendor_id)["mode"] == "upsert"
    for chunk in chunks:
        merge_chunk(get_database(), uploaded.job_id, vendor_id, chunk["chunk_no"])
    return uploaded.job_id


def test_matching_needs_a_profile_and_a_customer_of_the_vendor(database, two_vendors, redis_client):
    vendor, other = two_vendors
    without_profile = new_customer(vendor.id, None)
    with pytest.raises(HealthProfileMissing) as missing:
        match_customer(clinician(vendor.id), request_facts(), without_profile, MatchQuery())
    assert missing.value.code == "health_profile_missing"
    someone_else = new_customer(other.id, PROFILE)
    with pytest.raises(Exception, match="not found"):
        match_customer(clinician(vendor.id), request_facts(), someone_else, MatchQuery())


def test_a_published_snapshot_is_loaded_instead_of_rebuilt(database, two_vendors, aws_resources):
    vendor, _ = two_vendors
    load_catalog(database.admin_url, vendor.id, random_products(random.Random(9), 120))
    published = snapshot_store.publish_snapshot(vendor.id)
    key = snapshot_store.object_key(get_settings(), vendor.id, published.catalog_version)
    # Rows changed behind the version's back prove where a fresh process gets its snapshot from.
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("DELETE FROM products WHERE vendor_id = %s", (vendor.id,))
    fresh = SnapshotStore(max_bytes=1 << 30).current(get_database(), vendor.id, published.catalog_version)
    assert fresh.size == published.size > 0
    assert key.endswith(f"/{vendor.id}/{published.catalog_version}.npz")
    rebuilt = SnapshotStore(max_bytes=1 << 30).current(get_database(), vendor.id, published.catalog_version + 1)
    assert rebuilt.size == 0  # no published snapshot of a newer version: built from the (now empty) catalog
