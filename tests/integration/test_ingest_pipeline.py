"""The ingestion pipeline end to end on small files: the real ASL run locally, real PG, real S3 (moto)."""

import csv
import hashlib
import io
import json
import time
from decimal import Decimal

import psycopg
import pytest

from nutrimatch import aws
from nutrimatch.audit import verify
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.ingest import service
from nutrimatch.ingest.executions import LocalStarter
from nutrimatch.ingest.finalize import errors_key, finalize
from nutrimatch.ingest.load import load_chunk
from nutrimatch.ingest.merge import merge_chunk, prepare_merge
from nutrimatch.ingest.plan import plan, remember_mapping
from nutrimatch.matching import snapshot_store
from nutrimatch.settings import get_settings
from tests.integration.ingest_support import (
    create_uploaded_job,
    errors_of,
    finishes_within,
    ingest,
    products_of,
    run_job,
)

HEADER = "SKU,Product Name,Brand,Kcal,Protein (g),Sodium (mg),Allergens,Dietary Tags,Price\n"
ROWS = [
    "A-1,Greek Yogurt,Alpine,120,15,65,Milk,vegetarian;gluten free,2.49",
    "A-2,Rye Bread,Nordic,80,3,180,wheat;gluten,vegan,3.10",
    'A-3,"Trail Mix, ""Sweet & Salty""",Hike,170,5,95,peanuts;tree nuts,,4.99',
]


@pytest.fixture
def small_chunks(monkeypatch):
    """Tiny byte ranges, so even small files are split into several chunks."""
    monkeypatch.setenv("INGEST_CHUNK_BYTES", "60")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_clean_file_becomes_live_products(two_vendors, aws_resources):
    vendor, _ = two_vendors
    job = ingest(vendor.id, (HEADER + "\n".join(ROWS) + "\n").encode())
    assert job["status"] == "completed", job["error"]
    assert (job["counts"]["inserted"], job["counts"]["rejected"], job["counts"]["rows"]) == (3, 0, 3)
    products = products_of(vendor.id)
    assert products["A-1"]["calories"] == Decimal("120.00")
    assert products["A-1"]["allergens"] == ["milk"]
    assert products["A-1"]["dietary_tags"] == ["gluten_free", "vegetarian"]
    assert products["A-2"]["allergens"] == ["gluten", "wheat"]
    assert products["A-3"]["name"] == 'Trail Mix, "Sweet & Salty"'
    assert products["A-3"]["dietary_tags"] == []
    assert {c["header"]: c["field"] for c in job["mapping"]["columns"]}["Kcal"] == "calories"
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        assert conn.execute("SELECT catalog_version FROM vendors WHERE id = %s", (vendor.id,)).fetchone()[
            "catalog_version"] == 1
        events = conn.execute("SELECT event_type, payload FROM outbox_events WHERE vendor_id = %s",
                              (vendor.id,)).fetchall()
    assert [e["event_type"] for e in events] == ["job.completed"]
    assert events[0]["payload"]["counts"]["inserted"] == 3


def test_the_sha256_declared_at_upload_is_checked(two_vendors, aws_resources, small_chunks):
    vendor, _ = two_vendors
    data = (HEADER + "\n".join(ROWS) + "\n").encode()
    assert ingest(vendor.id, data, content_sha256=hashlib.sha256(data).hexdigest())["status"] == "completed"
    job = ingest(vendor.id, data, content_sha256=hashlib.sha256(b"another file").hexdigest())
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_file"
    assert hashlib.sha256(data).hexdigest() in job["error"]["message"]
    assert "declared" in job["error"]["message"]


def test_the_execution_publishes_the_matching_snapshot_of_the_new_catalog_version(two_vendors, aws_resources):
    vendor, _ = two_vendors
    uploaded = create_uploaded_job(vendor.id, (HEADER + "\n".join(ROWS) + "\n").encode())
    job = run_job(uploaded)
    assert LocalStarter.runtime().wait(str(uploaded.job_id)).status == "SUCCEEDED"
    published = snapshot_store.load_published(get_settings(), vendor.id, job["catalog_version"])
    assert published is not None
    assert (published.catalog_version, published.size) == (1, 3)


def test_a_snapshot_that_cannot_be_published_leaves_the_job_completed(two_vendors, aws_resources, monkeypatch):
    vendor, _ = two_vendors

    def broken(*args, **kwargs):
        raise RuntimeError("snapshot store unavailable")

    monkeypatch.setattr(snapshot_store, "publish_snapshot", broken)
    uploaded = create_uploaded_job(vendor.id, (HEADER + "\n".join(ROWS) + "\n").encode())
    job = run_job(uploaded)
    assert job["status"] == "completed"
    assert LocalStarter.runtime().wait(str(uploaded.job_id)).status == "SUCCEEDED"
    assert snapshot_store.load_published(get_settings(), vendor.id, job["catalog_version"]) is None


def test_rows_land_in_the_vendors_partitions_and_on_the_replica(two_vendors, aws_resources, database):
    vendor, other = two_vendors
    ingest(vendor.id, (HEADER + "\n".join(ROWS) + "\n").encode())
    with psycopg.connect(database.admin_url) as admin:
        leaves = {r[0] for r in admin.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM products WHERE vendor_id = %s", (vendor.id,))}
    assert leaves and all(leaf.startswith(f"products_v_{vendor.id.hex}_p") for leaf in leaves)
    assert products_of(other.id) == {}
    replica = database.replica_url.replace("nutrimatch_app@", "postgres@")
    deadline = time.monotonic() + 10
    while True:
        # A fresh transaction per look: one held open would see a single snapshot and delay replay.
        with psycopg.connect(replica, autocommit=True) as conn:
            count = conn.execute("SELECT count(*) FROM products WHERE vendor_id = %s", (vendor.id,)).fetchone()[0]
        if count == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert count == 3


def test_bad_rows_are_explained_and_good_rows_loaded(two_vendors, aws_resources, small_chunks):
    vendor, _ = two_vendors
    body = HEADER + "\n".join([
        ROWS[0],
        "B-1,Bad Number,X,abc,1,10,,,1.00",          # calories not a number
        "B-2,Negative,X,-5,1,10,,,1.00",             # negative calories
        "B-3,Moon Snack,X,100,1,10,moonrock;milk,,1.00",  # unknown allergen
        "A-1,Duplicate Yogurt,Alpine,99,1,10,milk,,1.00",  # duplicate external id (first at row 1)
        "B-4,Ragged,X,100",                          # too few columns
        "B-5,Salty,X,100,1,0.4,,,1.00",              # sodium given in grams
        ",No Id,X,100,1,10,,,1.00",                  # missing external id
        "B-6,Unread,X,100,1,10,花生,,1.00",           # an allergen no one here can read is not "none"
        "B-7,Unsure,X,100,1,10,?,,1.00",             # nor is a question mark
        ROWS[1],
    ]) + "\n"
    job = ingest(vendor.id, body.encode())
    assert job["status"] == "completed", job["error"]
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        methods = [r["load_method"] for r in conn.execute(
            "SELECT load_method FROM ingestion_chunks WHERE job_id = %s ORDER BY chunk_no", (job["id"],))]
    assert len(methods) > 3 and "parsed" in methods and "copy" in methods  # split, and only the ragged chunk parsed
    assert job["counts"]["rows"] == 11
    assert job["counts"]["inserted"] == 2
    assert job["counts"]["rejected"] == 9
    reasons = {(e["row_number"], e["column_name"]): e["reason"] for e in errors_of(vendor.id, job["id"])}
    assert reasons[(2, "calories")] == "not a number"
    assert reasons[(3, "calories")] == "must not be negative"
    assert "moonrock" in reasons[(4, "allergens")]
    assert reasons[(5, "external_id")] == "duplicate external_id; first seen at row 1"
    assert reasons[(6, None)] == "expected 9 columns, found 4"
    assert "grams" in reasons[(7, "sodium_mg")]
    assert reasons[(8, "external_id")] == "required value is missing"
    assert "花生" in reasons[(9, "allergens")] and "?" in reasons[(10, "allergens")]
    assert set(products_of(vendor.id)) == {"A-1", "A-2"}
    assert products_of(vendor.id)["A-1"]["name"] == "Greek Yogurt"  # the first occurrence won
    # errors.csv in S3, one line per problem, row numbers of the file's data rows
    settings = get_settings()
    body = aws.client("s3").get_object(Bucket=settings.upload_bucket, Key=errors_key(vendor.id, job["id"]))
    rows = list(csv.DictReader(io.StringIO(body["Body"].read().decode())))
    assert [r["row_number"] for r in rows] == ["2", "3", "4", "5", "6", "7", "8", "9", "10"]
    assert rows[0] == {"row_number": "2", "column": "calories", "value": "abc", "reason": "not a number"}


def test_a_chunk_with_over_a_thousand_ragged_rows_rejects_each_and_loads_the_rest(two_vendors, aws_resources):
    vendor, _ = two_vendors
    short = "SKU,Product Name,Brand,Kcal\n"
    good = "".join(f"G-{n},Good product {n},Brand,100\n" for n in range(50))
    ragged = "".join(f"R-{n},Cheese, aged 12 months,Brand,100\n" for n in range(1200))  # an unquoted comma
    uploaded = create_uploaded_job(vendor.id, (short + good + ragged).encode())
    database, settings, s3 = get_database(), get_settings(), aws.client("s3")
    chunks = plan(settings, database, s3, uploaded.job_id, vendor.id)["chunks"]
    for chunk in chunks:
        loaded = finishes_within(60, load_chunk, database, s3, uploaded.job_id, vendor.id, chunk["chunk_no"])
        assert loaded["method"] == "parsed"
    prepare_merge(settings, database, uploaded.job_id, vendor.id)
    for chunk in chunks:
        merge_chunk(database, uploaded.job_id, vendor.id, chunk["chunk_no"])
    counts = finalize(database, s3, uploaded.job_id, vendor.id)
    assert (counts["inserted"], counts["rejected"]) == (50, 1200)
    errors = errors_of(vendor.id, uploaded.job_id)
    assert len(errors) == 1200
    assert errors[0] == {"row_number": 51, "column_name": None, "value": "R-0,Cheese, aged 12 months,Brand,100",
                         "reason": "expected 4 columns, found 5"}


def test_a_line_of_just_backslash_dot_is_a_rejected_row_not_the_end_of_the_data(two_vendors, aws_resources):
    vendor, _ = two_vendors
    # COPY … CSV reads an unquoted line of just \. as the end of its data; inside quotes it is a value.
    body = ("SKU,Product Name,Description\n"
            'A-1,Yogurt,"Creamy\n\\.\nthick"\n'
            "\\.\n"
            "A-2,Bread,Rye\n"
            "A-3,Mix,Nuts\n"
            "\\.")
    job = ingest(vendor.id, body.encode())
    assert job["status"] == "completed", job["error"]
    assert (job["counts"]["rows"], job["counts"]["inserted"], job["counts"]["rejected"]) == (5, 3, 2)
    products = products_of(vendor.id)
    assert set(products) == {"A-1", "A-2", "A-3"}
    assert products["A-1"]["description"] == "Creamy\n\\.\nthick"
    assert [(e["row_number"], e["value"], e["reason"]) for e in errors_of(vendor.id, job["id"])] == [
        (2, "\\.", "expected 3 columns, found 1"), (5, "\\.", "expected 3 columns, found 1")]


def test_a_file_with_a_header_but_no_rows_fails_and_retires_nothing(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ingest(vendor.id, (HEADER + "\n".join(ROWS) + "\n").encode())
    for body in (HEADER.encode(), b"\xef\xbb\xbfSKU,Product Name\r\n\r\n"):
        job = ingest(vendor.id, body, mode="replace")
        assert job["status"] == "failed"
        assert (job["error"]["code"], job["error"]["message"]) == ("invalid_file", "the file has a header but no rows")
    assert {p["status"] for p in products_of(vendor.id).values()} == {"active"}


def test_a_row_with_a_nul_or_bytes_invalid_in_the_files_encoding_is_rejected_and_the_rest_loads(two_vendors,
                                                                                               aws_resources):
    vendor, _ = two_vendors
    # Past the head the Plan step sniffs (64 KiB), which reads as UTF-8 without a NUL.
    filler = "".join(f"F-{n},Filler product {n},Brand,100\n" for n in range(3000))
    body = (("SKU,Product Name,Brand,Kcal\n" + filler + "A-1,Yogurt,Alpine,120\nA-2,Bre\x00ad,Nordic,80\n").encode()
            + "A-3,Café crème,Nordic,80\n".encode("cp1252") + b"A-4,Mix,Hike,170\n")
    assert body.index(b"\x00") > 64 * 1024
    job = ingest(vendor.id, body)
    assert job["status"] == "completed", job["error"]
    assert (job["counts"]["inserted"], job["counts"]["rejected"]) == (3002, 2)
    assert {"A-1", "A-4"} <= set(products_of(vendor.id)) and not {"A-2", "A-3"} & set(products_of(vendor.id))
    assert [(e["row_number"], e["value"], e["reason"]) for e in errors_of(vendor.id, job["id"])] == [
        (3002, "A-2,Bre\ufffdad,Nordic,80", "contains a NUL byte"),
        (3003, "A-3,Caf\ufffd cr\ufffdme,Nordic,80", "holds bytes that are not valid utf-8, the encoding of the file")]


def test_encodings_delimiters_and_quoted_newlines_across_ranges(two_vendors, aws_resources, small_chunks):
    vendor, _ = two_vendors
    text = ("product_id;name;energy-kcal_100g;proteins_100g;sodium_100g;allergens\r\n"
            "X-1;Crème brûlée;250,5;4,2;0,05;milk;eggs\r\n"
            'X-2;"Soupe\r\nà l\'oignon, longue description qui traverse la frontière";45;1,5;0,4;\r\n'
            "X-3;Pâté;300;12;0,7;\r\n")
    for encoding, bom in (("cp1252", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16", b"")):
        job = ingest(vendor.id, bom + text.replace(";milk;eggs", ";milk|eggs").encode(encoding))
        assert job["status"] == "completed", (encoding, job["error"])
        products = products_of(vendor.id)
        assert products["X-1"]["name"] == "Crème brûlée", encoding
        assert products["X-1"]["calories"] == Decimal("250.50")
        assert products["X-1"]["sodium_mg"] == Decimal("50.00")  # sodium_100g is grams per 100 g
        assert products["X-1"]["nutrient_basis"] == "per_100g"
        assert products["X-1"]["allergens"] == ["eggs", "milk"]
        assert products["X-2"]["name"].startswith("Soupe\r\nà l'oignon")
        assert products["X-3"]["allergens"] is None  # empty cell: allergen information unknown


def test_unchanged_reingest_writes_nothing_and_keeps_the_version(two_vendors, aws_resources):
    vendor, _ = two_vendors
    body = (HEADER + "\n".join(ROWS) + "\n").encode()
    first = ingest(vendor.id, body)
    before = products_of(vendor.id)
    again = ingest(vendor.id, body)
    assert (again["counts"]["inserted"], again["counts"]["updated"], again["counts"]["unchanged"]) == (0, 0, 3)
    assert products_of(vendor.id)["A-1"]["updated_at"] == before["A-1"]["updated_at"]
    assert again["catalog_version"] is None and first["catalog_version"] == 1
    changed = ingest(vendor.id, body.replace(b"Greek Yogurt", b"Greek Yoghurt"))
    assert (changed["counts"]["updated"], changed["counts"]["unchanged"]) == (1, 2)
    assert changed["catalog_version"] == 2


def test_an_ingestion_that_changes_products_leaves_no_pending_full_text_entries(two_vendors, aws_resources,
                                                                               database):
    vendor, _ = two_vendors
    body = (HEADER + "\n".join(ROWS) + "\n").encode()
    ingest(vendor.id, body)
    ingest(vendor.id, body.replace(b"Greek Yogurt", b"Greek Yoghurt").replace(b"Rye Bread", b"Rye Loaf"))
    with psycopg.connect(database.admin_url, autocommit=True) as admin:
        def pending_pages():  # moved into the index proper by the count: what searches would read one by one
            indexes = admin.execute("SELECT indexname FROM pg_indexes WHERE tablename LIKE %s AND indexdef LIKE %s",
                                    (f"products_v_{vendor.id.hex}_%", "% USING gin %")).fetchall()
            assert len(indexes) == 16
            return sum(admin.execute("SELECT gin_clean_pending_list(%s::regclass)", (name,)).fetchone()[0]
                       for (name,) in indexes)

        assert pending_pages() == 0
        admin.execute("UPDATE products SET name = 'Greek Yogurt' WHERE vendor_id = %s AND external_id = 'A-1'",
                      (vendor.id,))
        assert pending_pages() > 0  # a write outside ingestion does leave pending entries: the count sees them


def test_replace_mode_retires_what_the_file_no_longer_lists(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ingest(vendor.id, (HEADER + "\n".join(ROWS) + "\n").encode())
    job = ingest(vendor.id, (HEADER + ROWS[0] + "\n").encode(), mode="replace")
    assert job["counts"]["retired"] == 2
    statuses = {k: v["status"] for k, v in products_of(vendor.id).items()}
    assert statuses == {"A-1": "active", "A-2": "retired", "A-3": "retired"}
    # Listed again later, a retired product comes back.
    ingest(vendor.id, (HEADER + ROWS[1] + "\n").encode())
    assert products_of(vendor.id)["A-2"]["status"] == "active"


def test_replace_keeps_the_products_listed_on_rows_rejected_while_loading(two_vendors, aws_resources):
    vendor, other = two_vendors
    header = "SKU,Product Name,Brand,Kcal\n"
    listed = "A-1,Yogurt,Alpine,120\nA-2,Bread,Nordic,80\nA-3,Mix,Hike,170\nA-4,Tea,Leaf,2\n"
    for v in (vendor, other):
        ingest(v.id, (header + listed).encode())
    # A-2's row is broken in both files, in two ways; A-3 follows a line COPY would take for the end of the data.
    rejected_while_loading = "A-1,Yogurt,Alpine,120\nA-2,Bread,Nordic,80,EXTRA\n\\.\nA-3,Mix,Hike,170\n"
    rejected_by_validation = "A-1,Yogurt,Alpine,120\nA-2,Bread,Nordic,eighty\nA-3,Mix,Hike,170\n"
    for v, rows in ((vendor, rejected_while_loading), (other, rejected_by_validation)):
        job = ingest(v.id, (header + rows).encode(), mode="replace")
        assert job["counts"]["retired"] == 1
        statuses = {k: p["status"] for k, p in products_of(v.id).items()}
        assert statuses == {"A-1": "active", "A-2": "active", "A-3": "active", "A-4": "retired"}


def test_missing_required_columns_fail_the_job_with_a_clear_message(two_vendors, aws_resources):
    vendor, _ = two_vendors
    job = ingest(vendor.id, b"Kcal,Protein\n100,2\n")
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_file"
    assert "Missing required column(s) for products: external_id, name" in job["error"]["message"]
    assert "Found columns: Kcal, Protein" in job["error"]["message"]
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        events = conn.execute("SELECT event_type, payload FROM outbox_events").fetchall()
        leftovers = conn.execute("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'staging'").fetchone()
    assert [(e["event_type"], e["payload"]["error"]) for e in events] == [("job.failed", "invalid_file")]
    assert leftovers["n"] == 0


def test_a_learned_mapping_maps_an_unknown_header(two_vendors, aws_resources):
    vendor, _ = two_vendors
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        remember_mapping(conn, vendor.id, "products", "Artikelnummer", "external_id", "tester")
        remember_mapping(conn, vendor.id, "products", "Bezeichnung", "name", "tester")
    job = ingest(vendor.id, b"Artikelnummer,Bezeichnung,Kcal\nD-1,Vollkornbrot,210\n")
    assert job["status"] == "completed", job["error"]
    assert products_of(vendor.id)["D-1"]["name"] == "Vollkornbrot"
    assert [c["learned"] for c in job["mapping"]["columns"]] == [True, True, False]


def test_a_column_the_vendor_said_to_ignore_is_ignored_in_its_next_files(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ignore_brand = service.MappingUpdate(mappings=[service.HeaderMappingEntry(header="Brand", field=None)])
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        service.confirm(conn, vendor.id, ignore_brand, "tester")
    job = ingest(vendor.id, b"SKU,Product Name,Brand,Kcal\nA-1,Yogurt,Alpine,120\n")
    assert job["status"] == "completed", job["error"]
    assert products_of(vendor.id)["A-1"]["brand"] is None
    brand = next(c for c in job["mapping"]["columns"] if c["header"] == "Brand")
    assert (brand["field"], brand["learned"]) == (None, True)


def test_customers_load_into_their_partitions(two_vendors, aws_resources):
    vendor, _ = two_vendors
    job = ingest(vendor.id, b"Member ID,Full Name,E-mail,Language\nC-1,Ana Ruiz,ANA@example.com,es-US\n"
                            b"C-2,Bo Li,not-an-email,en-US\n", kind="customers")
    assert job["status"] == "completed", job["error"]
    assert (job["counts"]["inserted"], job["counts"]["rejected"]) == (1, 1)
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        rows = conn.execute("SELECT external_id, email, locale FROM customers").fetchall()
    assert rows == [{"external_id": "C-1", "email": "ana@example.com", "locale": "es-US"}]
    assert json.dumps(errors_of(vendor.id, job["id"])[0]["reason"]) == '"not an email address"'
    unchanged = ingest(vendor.id, b"Member ID,Full Name,E-mail,Language\nC-1,Ana Ruiz,ANA@example.com,es-US\n",
                       kind="customers")
    assert unchanged["status"] == "completed" and unchanged["counts"]["unchanged"] == 1
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        audited = conn.execute("SELECT actor_user_id, actor_role, action, entity, entity_id FROM audit_log "
                               "WHERE vendor_id = %s ORDER BY seq", (vendor.id,)).fetchall()
        assert verify(conn, vendor.id).ok
    assert audited == [{"actor_user_id": job["created_by"], "actor_role": "ingestion", "action": "customers.imported",
                        "entity": "ingestion_job", "entity_id": str(job["id"])}]  # the unchanged file: none
