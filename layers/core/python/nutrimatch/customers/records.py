"""A vendor's customers: create, read, update, list (keyset pages), delete.

Ids are entity_uuid(vendor, external_id), so the vendor's own id for a person always maps to the same row.
Deleting is soft and erasing: the row stays (marked deleted, reads answer 404) but its name and email are
cleared and its health profile's ciphertext is destroyed; the audit trail keeps the sealed history. Creating
a deleted customer's external id again starts a new life for the row.

Changes to customers (PII) are audited with sealed before/after; reads of them are not (no PHI). A customers
file's changes are audited per chunk of the file, naming its ingestion job (nutrimatch.ingest.merge); a file
row with a deleted customer's external id starts a new life for it too.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal, Self
from uuid import UUID

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nutrimatch.audit import Actor, RequestInfo, record_by
from nutrimatch.customers import health
from nutrimatch.db import Connection
from nutrimatch.errors import Conflict, InvalidInput, NotFound
from nutrimatch.health.store import erase_profile
from nutrimatch.tenancy.ids import entity_uuid

ENTITY = "customer"
MAX_PAGE = 100
# Deliberately loose (one @, a dot in the domain, no spaces): stricter checks reject real addresses.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"

Status = Literal["active", "inactive"]

_COLUMNS = "id, external_id, name, email, locale, status, created_at, updated_at"
# A deleted customer's id can be created again; a live one is a conflict (no row comes back).
_CREATE = f"""
INSERT INTO customers (id, vendor_id, external_id, name, email, locale)
VALUES (%(id)s, %(vendor_id)s, %(external_id)s, %(name)s, %(email)s, %(locale)s)
ON CONFLICT (vendor_id, id) DO UPDATE
   SET name = EXCLUDED.name, email = EXCLUDED.email, locale = EXCLUDED.locale, status = 'active',
       created_at = now(), updated_at = now()
 WHERE customers.status = 'deleted'
RETURNING {_COLUMNS}
"""
_GET = f"SELECT {_COLUMNS} FROM customers WHERE vendor_id = %s AND id = %s AND status <> 'deleted'"
_DELETE = f"""
UPDATE customers SET status = 'deleted', name = NULL, email = NULL, updated_at = now()
 WHERE vendor_id = %s AND id = %s AND status <> 'deleted'
RETURNING {_COLUMNS}
"""


class NewCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str = Field(min_length=1, max_length=200, description="The vendor's own id for the customer")
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    locale: str = Field(default="en-US", max_length=35, pattern=LOCALE_PATTERN)


class CustomerChanges(BaseModel):
    """Only the fields present are changed; `null` clears name or email."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    locale: str | None = Field(default=None, max_length=35, pattern=LOCALE_PATTERN, description="Cannot be null")
    status: Status | None = Field(default=None, description="Cannot be null; DELETE deletes")

    @model_validator(mode="after")
    def _required_fields_are_not_cleared(self) -> Self:
        cleared = [name for name in ("locale", "status")
                   if name in self.model_fields_set and getattr(self, name) is None]
        if cleared:
            raise ValueError(f"{' and '.join(cleared)} cannot be null")
        return self


class Customer(BaseModel):
    id: UUID
    external_id: str
    name: str | None
    email: str | None
    locale: str
    status: str
    created_at: datetime
    updated_at: datetime


class CustomerQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")
    status: Status | None = Field(default=None, description="Only customers in this status")


class CustomerPage(BaseModel):
    items: list[Customer]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


def _cursor(after: UUID) -> str:
    return base64.urlsafe_b64encode(after.bytes).rstrip(b"=").decode()


def _after(cursor: str) -> UUID:
    try:
        return UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as error:
        raise InvalidInput("cursor is not one this API returned", details={"field": "cursor"}) from error


def _snapshot(customer: Customer) -> dict[str, Any]:
    return customer.model_dump(mode="json", include={"external_id", "name", "email", "locale", "status"})


def create(conn: Connection, actor: Actor, request: RequestInfo, new: NewCustomer) -> Customer:
    vendor_id = actor.require_vendor()
    values = {"id": entity_uuid(vendor_id, new.external_id), "vendor_id": vendor_id, **new.model_dump()}
    try:
        row = conn.execute(_CREATE, values).fetchone()
    except psycopg.errors.CheckViolation as error:  # no partition: the vendor does not exist
        raise NotFound("vendor not found") from error
    if row is None:
        raise Conflict(f"a customer with external_id {new.external_id!r} already exists",
                       details={"id": str(values["id"])})
    customer = Customer(**row)
    record_by(conn, actor, request, action="customer.created", entity=ENTITY, entity_id=str(customer.id),
              after=_snapshot(customer))
    return customer


def get(conn: Connection, actor: Actor, customer_id: UUID) -> Customer:
    row = conn.execute(_GET, (actor.require_vendor(), customer_id)).fetchone()
    if row is None:
        raise NotFound("customer not found")
    return Customer(**row)


def update(conn: Connection, actor: Actor, request: RequestInfo, customer_id: UUID,
           changes: CustomerChanges) -> Customer:
    before = get(conn, actor, customer_id)
    fields = changes.model_dump(include=changes.model_fields_set)
    if not fields:
        return before
    assignments = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
                                     for name in fields)
    statement = sql.SQL("UPDATE customers SET {}, updated_at = now() WHERE vendor_id = %(vendor_id)s"
                        " AND id = %(id)s AND status <> 'deleted' RETURNING " + _COLUMNS).format(assignments)
    row = conn.execute(statement, {**fields, "vendor_id": actor.require_vendor(), "id": customer_id}).fetchone()
    if row is None:
        raise NotFound("customer not found")
    customer = Customer(**row)
    record_by(conn, actor, request, action="customer.updated", entity=ENTITY, entity_id=str(customer_id),
              before=_snapshot(before), after=_snapshot(customer))
    return customer


def delete(conn: Connection, actor: Actor, request: RequestInfo, customer_id: UUID) -> None:
    vendor_id = actor.require_vendor()
    row = conn.execute(_DELETE, (vendor_id, customer_id)).fetchone()
    if row is None:
        raise NotFound("customer not found")
    erased = erase_profile(conn, vendor_id, customer_id, updated_by=actor.user_id)
    if erased is not None:
        record_by(conn, actor, request, action="health_profile.erased", entity=health.ENTITY,
                  entity_id=str(customer_id), before=health.audited_state(erased))
    record_by(conn, actor, request, action="customer.deleted", entity=ENTITY, entity_id=str(customer_id))


def list_page(conn: Connection, actor: Actor, query: CustomerQuery) -> CustomerPage:
    """Customers in id order, `limit` at a time; deleted ones never appear."""
    conditions = [sql.SQL("vendor_id = %(vendor_id)s"), sql.SQL("status <> 'deleted'")]
    params: dict[str, Any] = {"vendor_id": actor.require_vendor(), "limit": query.limit + 1}
    if query.status:
        conditions.append(sql.SQL("status = %(status)s"))
        params["status"] = query.status
    if query.cursor:
        conditions.append(sql.SQL("id > %(after)s"))
        params["after"] = _after(query.cursor)
    statement = sql.SQL("SELECT " + _COLUMNS + " FROM customers WHERE {} ORDER BY id LIMIT %(limit)s").format(
        sql.SQL(" AND ").join(conditions))
    rows = conn.execute(statement, params).fetchall()
    items = [Customer(**row) for row in rows[:query.limit]]
    more = len(rows) > query.limit
    return CustomerPage(items=items, next_cursor=_cursor(items[-1].id) if more else None)
