"""Vendor onboarding and offboarding."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from pydantic import BaseModel, Field

from nutrimatch.db import Database, scoped_transaction
from nutrimatch.errors import Conflict, InvalidInput, NotFound
from nutrimatch.tenancy.plans import PLAN_LIMITS, Plan

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class NewVendor(BaseModel):
    slug: str = Field(pattern=SLUG_PATTERN, description="URL-safe identifier, unique across the platform")
    name: str = Field(min_length=1, max_length=200)
    plan: Plan = Plan.STARTER


class Vendor(BaseModel):
    id: UUID
    slug: str
    name: str
    status: str
    plan: Plan
    rate_limit_per_second: int
    rate_limit_burst: int
    catalog_version: int
    allow_unknown_allergens: bool
    created_at: datetime
    deleted_at: datetime | None = None


_VENDOR_COLUMNS = """id, slug, name, status, plan, rate_limit_per_second, rate_limit_burst, catalog_version,
                     allow_unknown_allergens, created_at, deleted_at"""


def onboard(database: Database, new: NewVendor, vendor_id: UUID | None = None) -> Vendor:
    """Create the vendor and its 16 + 32 partitions in one transaction."""
    limits = PLAN_LIMITS[new.plan]
    try:
        with scoped_transaction(database.writer, None, platform_admin=True) as conn:
            row = conn.execute(
                f"SELECT {_VENDOR_COLUMNS} FROM onboard_vendor(%s, %s, %s, %s, %s, %s)",
                (vendor_id or uuid.uuid4(), new.slug, new.name, new.plan.value, limits.per_second, limits.burst),
            ).fetchone()
    except psycopg.errors.UniqueViolation as error:
        raise Conflict(f"a vendor with slug {new.slug!r} already exists") from error
    assert row is not None
    return Vendor(**row)


def get(database: Database, vendor_id: UUID, *, platform_admin: bool, caller_vendor: UUID | None) -> Vendor:
    with scoped_transaction(database.writer, caller_vendor, platform_admin=platform_admin) as conn:
        row = conn.execute(f"SELECT {_VENDOR_COLUMNS} FROM vendors WHERE id = %s", (vendor_id,)).fetchone()
    if row is None:
        raise NotFound("vendor not found")
    return Vendor(**row)


def find_by_slug_or_id(database: Database, key: str) -> Vendor:
    try:
        clause, value = "id = %s", str(UUID(key))
    except ValueError:
        clause, value = "slug = %s", key
    with scoped_transaction(database.writer, None, platform_admin=True) as conn:
        row = conn.execute(f"SELECT {_VENDOR_COLUMNS} FROM vendors WHERE {clause}", (value,)).fetchone()
    if row is None:
        raise NotFound(f"no vendor {key!r}")
    return Vendor(**row)


def list_all(database: Database) -> list[Vendor]:
    with scoped_transaction(database.writer, None, platform_admin=True) as conn:
        rows: list[dict[str, Any]] = conn.execute(
            f"SELECT {_VENDOR_COLUMNS} FROM vendors ORDER BY created_at, id").fetchall()
    return [Vendor(**row) for row in rows]


def offboard(database: Database, vendor_id: UUID) -> Vendor:
    """Soft delete: the vendor stops authenticating at once; its data stays until purged."""
    with scoped_transaction(database.writer, None, platform_admin=True) as conn:
        row = conn.execute(
            f"""UPDATE vendors SET status = 'deleted', deleted_at = coalesce(deleted_at, now()), updated_at = now()
                 WHERE id = %s RETURNING {_VENDOR_COLUMNS}""", (vendor_id,)).fetchone()
    if row is None:
        raise NotFound("vendor not found")
    return Vendor(**row)


def purge(database: Database, vendor_id: UUID) -> None:
    """Drop an offboarded vendor's partitions, keys and record."""
    with scoped_transaction(database.writer, None, platform_admin=True) as conn:
        exists = conn.execute("SELECT status FROM vendors WHERE id = %s", (vendor_id,)).fetchone()
        if exists is None:
            raise NotFound("vendor not found")
        if exists["status"] != "deleted":
            raise InvalidInput("only an offboarded vendor can be purged: DELETE it first")
        conn.execute("SELECT purge_vendor(%s)", (vendor_id,))
