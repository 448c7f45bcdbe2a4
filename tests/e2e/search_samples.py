"""Products for search tests: written on the writer, then awaited on the replica that searches read."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from psycopg import sql

from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.db.replica import wait_until_replayed
from nutrimatch.settings import get_settings
from nutrimatch.tenancy.vendors import Vendor


def insert_products(vendor_id: UUID, products: Iterable[Mapping[str, Any]]) -> None:
    """Insert products (dicts of products columns, external_id required) as the vendor, through RLS."""
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        for product in products:
            columns = [sql.Identifier(name) for name in product]
            values = [sql.Placeholder(name) for name in product]
            conn.execute(
                sql.SQL("INSERT INTO products (id, vendor_id, {}) VALUES "
                        "(entity_uuid(%(vendor_id)s, %(external_id)s), %(vendor_id)s, {})").format(
                    sql.SQL(", ").join(columns), sql.SQL(", ").join(values)),
                {**product, "vendor_id": vendor_id},
            )


def wait_for_replica(timeout: float = 10) -> None:
    """Until the replica has replayed everything the writer has written so far."""
    settings = get_settings()
    assert settings.database_replica_url
    wait_until_replayed(settings.database_admin_url, settings.database_replica_url, timeout)


def sample_product(vendor: Vendor) -> str:
    """A product of the vendor, visible on the replica; its external id (unique, so vendors never share one)."""
    external_id = f"sample-{uuid.uuid4().hex[:8]}"
    insert_products(vendor.id, [{"external_id": external_id, "name": "Sample oat bar", "price": 2.5}])
    wait_for_replica()
    return external_id
