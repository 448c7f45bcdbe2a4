"""A vendor's first catalog bulk-loaded through shadow partitions, and later files that skip unchanged rows.

The pipeline runs for real (the ASL file run locally, real PostgreSQL, S3 on moto). The files are small, so
each test sets how many rows make a vendor's first file a bulk load.
"""

import csv
import io
import time
import uuid
from decimal import Decimal

import psycopg
import pytest

from nutrimatch import aws
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.demo.catalog import write_products_csv
from nutrimatch.ingest import jobs
from nutrimatch.ingest.bulk import index_leaf
from nutrimatch.ingest.finalize import finalize
from nutrimatch.ingest.load import load_chunk
from nutrimatch.ingest.merge import merge_chunk, prepare_merge
from nutrimatch.ingest.plan import plan
from nutrimatch.ingest.trigger import UploadedObject
from nutrimatch.local.ingest_runtime import invoke_task, local_definition
from nutrimatch.local.stepfunctions import AslRunner, StatesError
from nutrimatch.settings import get_settings
from nutrimatch.tenancy.ids import entity_uuid
from tests.integration.ingest_support import create_uploaded_job, errors_of, ingest, products_of

# What differs between two vendors holding the same products.
PER_VENDOR = {"id", "vendor_id", "created_at", "updated_at"}


@pytest.fixture
def bulk_load_from(monkeypatch):
    """Sets how many rows a vendor's first file needs to be bulk-loaded (None: never)."""

    def set_threshold(rows: int | None) -> None:
        monkeypatch.setenv("INGEST_BULK_LOAD_MIN_ROWS", str(10**9 if rows is None else rows))
        get_settings.cache_clear()

    yield set_threshold
    get_settings.cache_clear()


def catalog_rows(count: int, *, bad_fraction: float = 0.0) -> list[list[str]]:
    """A realistic catalog: the header row, then `count` products."""
    buffer = io.BytesIO()
    write_products_csv(buffer, count, bad_fraction=bad_fraction)
    return list(csv.reader(io.StringIO(buffer.getvalue().decode())))


def as_csv(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode()


def merge_mode(vendor_id: uuid.UUID, job_id: uuid.UUID) -> str:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return str(jobs.fetch(conn, vendor_id, job_id)["plan"]["merge"])


def run_steps_until_finalize(uploaded: UploadedObject) -> None:
    """The job's steps in the state machine's order, up to (not including) Finalize."""
    database, settings, s3, vendor_id = get_database(), get_settings(), aws.client("s3"), uploaded.vendor_id
    chunks = plan(settings, database, s3, uploaded.job_id, vendor_id)["chunks"]
    for chunk in chunks:
        load_chunk(database, s3, uploaded.job_id, vendor_id, chunk["chunk_no"])
    leaves = prepare_merge(settings, database, uploaded.job_id, vendor_id)["leaves"]
    for chunk in chunks:
        merge_chunk(database, uploaded.job_id, vendor_id, chunk["chunk_no"])
    for leaf in leaves:
        index_leaf(database, uploaded.job_id, vendor_id, leaf["leaf"])


def leaves_of(admin: psycopg.Connection, parent: str) -> list[str]:
    return [r[0] for r in admin.execute(
        "SELECT c.relnamespace::regnamespace || '.' || c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = "
        "i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY c.relname", (parent,))]


def shadows(admin: psycopg.Connection) -> list[str]:
    return [r[0] for r in admin.execute(r"SELECT relname FROM pg_class WHERE relname LIKE 'bulk\_%'")]


def index_shapes(admin: psycopg.Connection, leaf: str) -> list[tuple[str, bool, bool]]:
    """Each index of a leaf: (its definition without names, attached to a partitioned index, valid)."""
    rows = admin.execute(
        r"""SELECT regexp_replace(pg_get_indexdef(i.indexrelid), '^(CREATE (UNIQUE )?INDEX )\S+ ON \S+ ', '\1'),
                   EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid), i.indisvalid
              FROM pg_index i WHERE i.indrelid = %s::regclass""", (leaf,)).fetchall()
    return sorted(rows)


def test_a_bulk_first_load_stores_exactly_what_the_upsert_path_stores(two_vendors, aws_resources, bulk_load_from):
    bulk_vendor, upsert_vendor = two_vendors
    rows = catalog_rows(400, bad_fraction=0.05)
    body = as_csv(rows + rows[1:4])  # and three repeated external ids
    bulk_load_from(0)
    bulk = ingest(bulk_vendor.id, body)
    bulk_load_from(None)
    upserted = ingest(upsert_vendor.id, body)
    assert (merge_mode(bulk_vendor.id, bulk["id"]), merge_mode(upsert_vendor.id, upserted["id"])) == (
        "bulk_load", "upsert")
    assert bulk["status"] == upserted["status"] == "completed", (bulk["error"], upserted["error"])
    assert bulk["counts"] == upserted["counts"]
    assert bulk["counts"]["rejected"] >= 20 and bulk["counts"]["inserted"] == 403 - bulk["counts"]["rejected"]

    def stored(vendor_id: uuid.UUID) -> dict[str, dict]:
        return {key: {c: v for c, v in row.items() if c not in PER_VENDOR}
                for key, row in products_of(vendor_id).items()}

    assert stored(bulk_vendor.id) == stored(upsert_vendor.id)  # search vectors and hashes included
    assert all(row["id"] == entity_uuid(bulk_vendor.id, key) for key, row in products_of(bulk_vendor.id).items())
    assert errors_of(bulk_vendor.id, bulk["id"]) == errors_of(upsert_vendor.id, upserted["id"])
    with scoped_transaction(get_database().writer, bulk_vendor.id) as conn:
        version = conn.execute("SELECT catalog_version FROM vendors WHERE id = %s", (bulk_vendor.id,)).fetchone()
        events = conn.execute("SELECT event_type, payload FROM outbox_events").fetchall()
    assert version["catalog_version"] == 1
    assert [(e["event_type"], e["payload"]["counts"]) for e in events] == [("job.completed", bulk["counts"])]


def test_bulk_loaded_leaves_replace_the_empty_ones_with_every_index_attached(two_vendors, aws_resources,
                                                                             bulk_load_from, database):
    vendor, other = two_vendors
    bulk_load_from(0)
    job = ingest(vendor.id, as_csv(catalog_rows(200)))
    assert job["status"] == "completed", job["error"]
    parent = f"products_v_{vendor.id.hex}"
    with psycopg.connect(database.admin_url) as admin:
        leaves = leaves_of(admin, parent)
        assert leaves == [f"public.{parent}_p{n:02d}" for n in range(16)]
        # The indexes of the other vendor's (never swapped) leaves: attached to the partitioned indexes, valid.
        expected = index_shapes(admin, leaves_of(admin, f"products_v_{other.id.hex}")[0])
        assert len(expected) >= 5 and all(attached and valid for _, attached, valid in expected)
        assert all(index_shapes(admin, leaf) == expected for leaf in leaves)
        names = {r[0] for r in admin.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
            (leaves[3],))}
        assert f"{parent}_p03_pkey" in names and not any(name.startswith("bulk_") for name in names)
        # As any leaf: no bulk-load constraint or setting left, closed to the application role, analyzed.
        assert admin.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass "
                             "AND conname LIKE 'bulk_load%%'", (leaves[3],)).fetchone()[0] == 0
        assert admin.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
                             (leaves[3],)).fetchone()[0] is None
        assert not admin.execute("SELECT has_table_privilege('nutrimatch_app', %s, 'SELECT')",
                                 (leaves[3],)).fetchone()[0]
        assert admin.execute("SELECT count(DISTINCT tablename) FROM pg_stats WHERE tablename LIKE %s "
                             "AND attname = 'search_tsv'", (f"{parent}_p%",)).fetchone()[0] == 16
        assert shadows(admin) == []
        assert admin.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'").fetchone()[0] == 0
    assert len(products_of(vendor.id)) == 200
    assert products_of(other.id) == {}


def test_the_shadow_leaves_attach_without_a_validation_scan(two_vendors, aws_resources, bulk_load_from):
    vendor, _ = two_vendors
    bulk_load_from(0)
    uploaded = create_uploaded_job(vendor.id, as_csv(catalog_rows(50)))
    run_steps_until_finalize(uploaded)
    notices: list[str] = []
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        conn.execute("SET LOCAL client_min_messages = debug1")
        assert conn.execute("SELECT swap_in_bulk_load(%s, %s, 'products') AS swapped",
                            (vendor.id, uploaded.job_id)).fetchone()["swapped"]
    assert len([n for n in notices if n.startswith("partition constraint for table") and "is implied" in n]) == 16
    assert len(products_of(vendor.id)) == 50


def test_a_failed_bulk_load_leaves_no_shadow_and_the_catalog_untouched(two_vendors, aws_resources, bulk_load_from,
                                                                       database):
    vendor, _ = two_vendors
    bulk_load_from(0)
    uploaded = create_uploaded_job(vendor.id, as_csv(catalog_rows(120)))
    shadows_seen = []

    def invoke(resource: str, payload: dict) -> object:
        result = invoke_task(resource, payload)
        if resource.endswith("ingest_steps.prepare_merge"):
            with psycopg.connect(database.admin_url) as admin:
                shadows_seen.extend(shadows(admin))
            with scoped_transaction(get_database().writer, vendor.id) as conn:
                jobs.cancel(conn, vendor.id, uploaded.job_id)  # the vendor gives up while the chunks merge
        return result

    with pytest.raises(StatesError) as failure:
        AslRunner(local_definition(), invoke, interval_scale=0.01).run(
            {"job_id": str(uploaded.job_id), "vendor_id": str(vendor.id)})
    assert failure.value.error == "IngestionFailed"
    assert shadows_seen, "the shadow was never created"
    with psycopg.connect(database.admin_url) as admin:
        assert shadows(admin) == []
        assert admin.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'").fetchone()[0] == 0
        assert len(leaves_of(admin, f"products_v_{vendor.id.hex}")) == 16
    assert products_of(vendor.id) == {}


def test_files_after_a_bulk_first_load_are_upserted_skipping_unchanged_rows(two_vendors, aws_resources,
                                                                            bulk_load_from):
    vendor, _ = two_vendors
    bulk_load_from(0)
    rows = catalog_rows(150)
    first = ingest(vendor.id, as_csv(rows))
    assert merge_mode(vendor.id, first["id"]) == "bulk_load"
    before = products_of(vendor.id)

    again = ingest(vendor.id, as_csv(rows))
    assert merge_mode(vendor.id, again["id"]) == "upsert"
    assert (again["counts"]["inserted"], again["counts"]["updated"], again["counts"]["unchanged"]) == (0, 0, 150)
    assert again["catalog_version"] is None
    assert products_of(vendor.id) == before

    header, changed, new = rows[0], list(rows[1]), list(rows[2])
    changed[header.index("name")] += " (new recipe)"
    new[header.index("external_id")] = "SKU-NEW-1"
    edited = ingest(vendor.id, as_csv([header, changed, *rows[2:], new]) + b"a ragged row\n")
    counts = edited["counts"]
    assert (counts["inserted"], counts["updated"], counts["unchanged"], counts["rejected"]) == (1, 1, 149, 1)
    after = products_of(vendor.id)
    key = changed[header.index("external_id")]
    assert after[key]["name"].endswith("(new recipe)") and after[key]["catalog_version"] == edited["catalog_version"]
    assert after["SKU-NEW-1"]["created_at"] > before[key]["created_at"]
    untouched = rows[5][header.index("external_id")]
    assert after[untouched]["updated_at"] == before[untouched]["updated_at"]


def test_the_same_cells_read_another_way_are_validated_again(two_vendors, aws_resources, bulk_load_from):
    """The source hash covers how cells are read (mapping, units): same cells, sodium now in grams."""
    vendor, _ = two_vendors
    bulk_load_from(0)
    ingest(vendor.id, b"sku,name,sodium (mg)\nS-1,Crackers,1\nS-2,Soup,2\n")
    assert products_of(vendor.id)["S-2"]["sodium_mg"] == Decimal("2.00")
    job = ingest(vendor.id, b"sku,name,sodium (g)\nS-1,Crackers,1\nS-2,Soup,2\n")
    assert (job["counts"]["updated"], job["counts"]["unchanged"]) == (2, 0)
    assert products_of(vendor.id)["S-2"]["sodium_mg"] == Decimal("2000.00")


def test_a_bulk_load_finalized_after_another_filled_the_catalog_is_upserted(two_vendors, aws_resources,
                                                                           bulk_load_from, database):
    """Two first loads of one vendor both start as bulk loads; the one finalized second finds the catalog no
    longer empty, so its rows are merged as an upsert would merge them, and counted that way."""
    vendor, _ = two_vendors
    bulk_load_from(0)
    rows = catalog_rows(30)
    late = create_uploaded_job(vendor.id, as_csv(rows[:21]))  # products 1-20
    run_steps_until_finalize(late)
    early = ingest(vendor.id, as_csv(rows[:1] + rows[11:]))  # products 11-30
    assert merge_mode(vendor.id, early["id"]) == "bulk_load" and early["counts"]["inserted"] == 20
    counts = finalize(get_database(), aws.client("s3"), late.job_id, vendor.id)
    assert (counts["inserted"], counts["updated"], counts["unchanged"]) == (10, 0, 10)
    assert len(products_of(vendor.id)) == 30
    with psycopg.connect(database.admin_url) as admin:
        assert shadows(admin) == []


def test_bulk_load_steps_retried_after_they_committed_do_nothing_twice(two_vendors, aws_resources, bulk_load_from):
    vendor, _ = two_vendors
    bulk_load_from(0)
    database, settings, s3 = get_database(), get_settings(), aws.client("s3")
    uploaded = create_uploaded_job(vendor.id, as_csv(catalog_rows(60)))
    chunks = plan(settings, database, s3, uploaded.job_id, vendor.id)["chunks"]
    for chunk in chunks:
        load_chunk(database, s3, uploaded.job_id, vendor.id, chunk["chunk_no"])
    prepare_merge(settings, database, uploaded.job_id, vendor.id)
    leaves = prepare_merge(settings, database, uploaded.job_id, vendor.id)["leaves"]
    for chunk in chunks:
        merge_chunk(database, uploaded.job_id, vendor.id, chunk["chunk_no"])
        assert merge_chunk(database, uploaded.job_id, vendor.id, chunk["chunk_no"])["already_merged"]
    for leaf in leaves:
        index_leaf(database, uploaded.job_id, vendor.id, leaf["leaf"])
        index_leaf(database, uploaded.job_id, vendor.id, leaf["leaf"])
    counts = finalize(database, s3, uploaded.job_id, vendor.id)
    assert finalize(database, s3, uploaded.job_id, vendor.id) == counts
    assert counts["inserted"] == 60 and len(products_of(vendor.id)) == 60
    with scoped_transaction(database.writer, vendor.id) as conn:
        assert conn.execute("SELECT count(*) AS n FROM outbox_events").fetchone()["n"] == 1


def test_customers_are_bulk_loaded_into_their_32_leaves(two_vendors, aws_resources, bulk_load_from, database):
    vendor, _ = two_vendors
    bulk_load_from(0)
    body = "Member ID,Full Name,E-mail\n" + "".join(f"C-{n},Person {n},p{n}@example.com\n" for n in range(100))
    job = ingest(vendor.id, (body + "C-X,Bad,not-an-email\n").encode(), kind="customers")
    assert job["status"] == "completed", job["error"]
    assert (job["counts"]["inserted"], job["counts"]["rejected"]) == (100, 1)
    assert merge_mode(vendor.id, job["id"]) == "bulk_load"
    with psycopg.connect(database.admin_url) as admin:
        leaves = leaves_of(admin, f"customers_v_{vendor.id.hex}")
        assert len(leaves) == 32 and all(leaf.startswith(f"public.customers_v_{vendor.id.hex}_p") for leaf in leaves)
        assert all(shape[1:] == (True, True) for leaf in leaves for shape in index_shapes(admin, leaf))
        assert shadows(admin) == []
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        assert conn.execute("SELECT count(*) AS n FROM customers").fetchone()["n"] == 100


def test_bulk_loaded_rows_reach_the_replica(two_vendors, aws_resources, bulk_load_from, database):
    vendor, _ = two_vendors
    bulk_load_from(0)
    ingest(vendor.id, as_csv(catalog_rows(40)))
    replica = database.replica_url.replace("nutrimatch_app@", "postgres@")
    deadline, count = time.monotonic() + 10, 0
    while count != 40 and time.monotonic() < deadline:
        # A new transaction each time: one holding the vendor's former leaves would hold up the replay.
        with psycopg.connect(replica, autocommit=True) as conn:
            count = conn.execute("SELECT count(*) FROM products WHERE vendor_id = %s", (vendor.id,)).fetchone()[0]
        time.sleep(0.05)
    assert count == 40


def test_small_first_files_are_upserted(two_vendors, aws_resources, bulk_load_from):
    small_vendor, large_vendor = two_vendors
    bulk_load_from(10)
    rows = catalog_rows(10)
    assert merge_mode(small_vendor.id, ingest(small_vendor.id, as_csv(rows[:10]))["id"]) == "upsert"
    assert merge_mode(large_vendor.id, ingest(large_vendor.id, as_csv(rows))["id"]) == "bulk_load"


def test_ids_from_the_digest_are_entity_uuids(database):
    vendor = uuid.uuid4()
    with psycopg.connect(database.admin_url) as admin:
        for external_id in ("SKU-1", "ünïcødé €", " spaced ", "x" * 300):
            via_digest, via_function = admin.execute(
                "SELECT entity_uuid_of_digest(sha256(uuid_send(%s::uuid) || convert_to(%s, 'UTF8'))), "
                "entity_uuid(%s::uuid, %s)", (vendor, external_id, vendor, external_id)).fetchone()
            assert via_digest == via_function == entity_uuid(vendor, external_id)


def test_a_bulk_loads_progress_counts_each_indexed_leaf_once(two_vendors, aws_resources, bulk_load_from):
    vendor, _ = two_vendors
    bulk_load_from(0)
    uploaded = create_uploaded_job(vendor.id, as_csv(catalog_rows(100)))
    database, settings, s3 = get_database(), get_settings(), aws.client("s3")
    chunks = plan(settings, database, s3, uploaded.job_id, vendor.id)["chunks"]
    for chunk in chunks:
        load_chunk(database, s3, uploaded.job_id, vendor.id, chunk["chunk_no"])
    leaves = [leaf["leaf"] for leaf in prepare_merge(settings, database, uploaded.job_id, vendor.id)["leaves"]]
    for chunk in chunks:
        merge_chunk(database, uploaded.job_id, vendor.id, chunk["chunk_no"])

    def progress() -> jobs.JobProgress:
        with scoped_transaction(database.writer, vendor.id) as conn:
            return jobs.progress(conn, jobs.fetch(conn, vendor.id, uploaded.job_id))

    merged = progress()
    assert (merged.chunks_merged, merged.leaves_total, merged.leaves_indexed) == (len(chunks), 16, 0)
    assert merged.fraction_done == 0.7  # a tenth loading, six tenths merging, three tenths indexing
    for leaf in leaves[:5] + leaves[:2]:  # two of them retried
        index_leaf(database, uploaded.job_id, vendor.id, leaf)
    assert (progress().leaves_indexed, progress().fraction_done) == (5, round(0.7 + 0.3 * 5 / 16, 3))
    for leaf in leaves[5:]:
        index_leaf(database, uploaded.job_id, vendor.id, leaf)
    done = progress()
    assert (done.leaves_indexed, done.eta_seconds) == (16, None)
