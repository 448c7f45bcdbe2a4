"""Onboarding builds the partition tree; rows land in their vendor's leaves; RLS hides other tenants."""

import uuid

import psycopg
import pytest

from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.tenancy import vendors
from nutrimatch.tenancy.ids import entity_uuid
from nutrimatch.tenancy.vendors import NewVendor


def _children(conn, parent: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass ORDER BY 1", (parent,))]


def _partition(base: str, vendor_id: uuid.UUID) -> str:
    return f"{base}_v_{vendor_id.hex}"


def test_onboarding_creates_the_list_and_hash_partition_tree(two_vendors, database):
    vendor_a, vendor_b = two_vendors
    with database.admin() as conn:
        assert set(_children(conn, "products")) == {_partition("products", v.id) for v in two_vendors}
        products_a = _children(conn, _partition("products", vendor_a.id))
        customers_a = _children(conn, _partition("customers", vendor_a.id))
        assert len(products_a) == 16 and len(customers_a) == 32
        bounds = conn.execute(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s",
            (f"products_v_{vendor_a.id.hex}_p07",)).fetchone()[0]
        assert bounds == "FOR VALUES WITH (modulus 16, remainder 7)"
        # Idempotent: a second call neither fails nor changes the tree.
        conn.execute("SELECT create_vendor_partitions(%s)", (vendor_a.id,))
        assert _children(conn, _partition("products", vendor_a.id)) == products_a


def test_rows_land_in_their_vendors_leaf_and_ids_match_sql(two_vendors, database):
    vendor_a, vendor_b = two_vendors
    db = get_database()
    for vendor in two_vendors:
        with scoped_transaction(db.writer, vendor.id) as conn:
            for n in range(40):
                external = f"SKU-{n}"
                conn.execute(
                    "INSERT INTO products (id, vendor_id, external_id, name) "
                    "VALUES (entity_uuid(%s, %s), %s, %s, %s)",
                    (vendor.id, external, vendor.id, external, f"Product {n}"))
    with database.admin() as conn:
        rows = conn.execute("SELECT vendor_id, id, external_id, tableoid::regclass::text FROM products").fetchall()
        leaves = {v.id: set(_children(conn, _partition("products", v.id))) for v in two_vendors}
        hashed = conn.execute(
            "SELECT count(DISTINCT tableoid) FROM products WHERE vendor_id = %s", (vendor_a.id,)).fetchone()[0]
    assert len(rows) == 80
    for vendor_id, row_id, external, leaf in rows:
        assert leaf in leaves[vendor_id]
        assert row_id == entity_uuid(vendor_id, external)  # Python and SQL derive the same id
    assert hashed > 8  # spread over the hash leaves, not piled in one


def test_the_app_role_sees_no_tenant_rows_without_a_vendor_in_the_transaction(two_vendors, database):
    vendor_a, vendor_b = two_vendors
    db = get_database()
    for vendor in two_vendors:
        with scoped_transaction(db.writer, vendor.id) as conn:
            conn.execute("INSERT INTO products (id, vendor_id, external_id, name) VALUES (%s, %s, 'X', 'x')",
                         (entity_uuid(vendor.id, "X"), vendor.id))
            conn.execute("INSERT INTO customers (id, vendor_id, external_id) VALUES (%s, %s, 'C')",
                         (entity_uuid(vendor.id, "C"), vendor.id))
    with psycopg.connect(database.writer_url, autocommit=True) as raw:
        assert raw.execute("SELECT current_user").fetchone() == ("nutrimatch_app",)
        assert raw.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
        for table in ("products", "customers", "api_keys", "vendors"):
            assert raw.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute(f"SELECT count(*) FROM products_v_{vendor_b.id.hex}_p00")
        with raw.transaction():
            raw.execute("SELECT set_config('app.vendor_id', %s, true)", (str(vendor_a.id),))
            assert raw.execute("SELECT DISTINCT vendor_id FROM products").fetchall() == [(vendor_a.id,)]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                raw.execute("INSERT INTO products (id, vendor_id, external_id, name) VALUES (%s, %s, 'Y', 'y')",
                            (uuid.uuid4(), vendor_b.id))
        # The setting was transaction-local: it is gone now.
        assert raw.execute("SELECT count(*) FROM products").fetchone() == (0,)


def test_offboarding_then_purge_drops_the_vendors_partitions(two_vendors, database):
    vendor_a, _ = two_vendors
    db = get_database()
    with pytest.raises(Exception, match="offboarded"):
        vendors.purge(db, vendor_a.id)
    with scoped_transaction(db.writer, vendor_a.id) as conn:
        job = uuid.uuid4()
        conn.execute("""INSERT INTO ingestion_jobs (id, vendor_id, kind, mode, file_name, size_bytes, s3_bucket, s3_key,
                                                    upload_method, created_by)
                        VALUES (%s, %s, 'products', 'upsert', 'f.csv', 1, 'b', %s, 'multipart', 't')""",
                     (job, vendor_a.id, f"incoming/{vendor_a.id}/{job}/f.csv"))
        conn.execute("INSERT INTO header_mappings (vendor_id, kind, header_normalized, field, confirmed_by) "
                     "VALUES (%s, 'products', 'sku', 'external_id', 't')", (vendor_a.id,))
        conn.execute("INSERT INTO outbox_events (id, vendor_id, event_type, payload) VALUES (%s, %s, 'x', '{}')",
                     (uuid.uuid4(), vendor_a.id))
    assert vendors.offboard(db, vendor_a.id).status == "deleted"
    vendors.purge(db, vendor_a.id)
    with database.admin() as conn:
        for table in ("ingestion_jobs", "header_mappings", "outbox_events", "api_keys"):
            left = conn.execute(f"SELECT count(*) FROM {table} WHERE vendor_id = %s", (vendor_a.id,)).fetchone()
            assert left == (0,), table
        assert conn.execute("SELECT to_regclass(%s)", (_partition("products", vendor_a.id),)).fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM vendors WHERE id = %s", (vendor_a.id,)).fetchone() == (0,)


def test_onboarding_is_atomic(database):
    db = get_database()
    vendors.onboard(db, NewVendor(slug="taken", name="First"))
    with pytest.raises(Exception, match="already exists"):
        vendors.onboard(db, NewVendor(slug="taken", name="Second"), vendor_id=uuid.UUID(int=7))
    with database.admin() as conn:
        # The failed onboarding's partitions were rolled back with its vendor row.
        assert conn.execute("SELECT to_regclass(%s)", (_partition("products", uuid.UUID(int=7)),)).fetchone() == (None,)
