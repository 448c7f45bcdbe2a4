"""Customers in the core: deterministic ids, conflicts, keyset pages, partial updates, erasing deletes, audit."""

from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from nutrimatch.api import Caller
from nutrimatch.audit import RequestInfo, read_changes
from nutrimatch.customers import records
from nutrimatch.customers.records import CustomerChanges, CustomerQuery, NewCustomer
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.errors import Conflict, InvalidInput, NotFound
from nutrimatch.routes import Role
from nutrimatch.tenancy.ids import entity_uuid

REQUEST = RequestInfo(request_id="r-1", ip="192.0.2.1", user_agent="crm-sync", justification=None)


def _admin(vendor_id: UUID) -> Caller:
    return Caller(user_id="admin-1", role=Role.VENDOR_ADMIN, vendor_id=vendor_id)


def _tx(vendor_id: UUID):
    return scoped_transaction(get_database().writer, vendor_id)


def test_create_derives_the_id_and_refuses_a_live_duplicate(two_vendors, aws_resources, database):
    vendor, other = two_vendors
    new = NewCustomer(external_id="crm-77", name="Ada Lovelace", email="ada@example.org", locale="en-GB")
    with _tx(vendor.id) as conn:
        created = records.create(conn, _admin(vendor.id), REQUEST, new)
    assert created.id == entity_uuid(vendor.id, "crm-77") and created.status == "active"
    with pytest.raises(Conflict), _tx(vendor.id) as conn:
        records.create(conn, _admin(vendor.id), REQUEST, new)
    with _tx(other.id) as conn:  # the same external id is another person at another vendor
        assert records.create(conn, _admin(other.id), REQUEST, new).id != created.id
    with pytest.raises(NotFound), _tx(uuid4()) as conn:  # a vendor that does not exist
        records.create(conn, Caller(user_id="p", role=Role.PLATFORM_ADMIN, vendor_id=uuid4()), REQUEST, new)


def test_emails_and_locales_are_validated():
    for bad in ({"email": "not-an-email"}, {"email": "a@b"}, {"email": "two@@example.com"}, {"locale": "english!"},
                {"external_id": ""}, {"surprise": 1}):
        with pytest.raises(ValidationError):
            NewCustomer.model_validate({"external_id": "x", **bad})
    assert NewCustomer(external_id=" x ", email=" a.b+c@sub.example.co ").email == "a.b+c@sub.example.co"


def test_keyset_pages_cover_every_customer_once_in_id_order(two_vendors, aws_resources, database):
    vendor, other = two_vendors
    caller = _admin(vendor.id)
    with _tx(vendor.id) as conn:
        ids = [records.create(conn, caller, REQUEST, NewCustomer(external_id=f"c{n}")).id for n in range(23)]
        records.update(conn, caller, REQUEST, ids[0], CustomerChanges(status="inactive"))
        records.delete(conn, caller, REQUEST, ids[1])
    with _tx(other.id) as conn:
        records.create(conn, _admin(other.id), REQUEST, NewCustomer(external_id="elsewhere"))
    seen, cursor = [], None
    with _tx(vendor.id) as conn:
        while True:
            page = records.list_page(conn, caller, CustomerQuery(limit=5, cursor=cursor))
            seen += [c.id for c in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        inactive = records.list_page(conn, caller, CustomerQuery(status="inactive"))
        with pytest.raises(InvalidInput):
            records.list_page(conn, caller, CustomerQuery(cursor="%%%not-ours"))
    assert seen == sorted(set(ids) - {ids[1]})
    assert [c.id for c in inactive.items] == [ids[0]] and inactive.next_cursor is None


def test_update_changes_only_the_given_fields_and_is_audited(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    caller = _admin(vendor.id)
    with _tx(vendor.id) as conn:
        created = records.create(conn, caller, REQUEST, NewCustomer(external_id="u1", name="Old", email="o@x.io"))
        updated = records.update(conn, caller, REQUEST, created.id,
                                 CustomerChanges.model_validate({"name": "New", "email": None}))
        unchanged = records.update(conn, caller, REQUEST, created.id, CustomerChanges.model_validate({}))
    assert (updated.name, updated.email, updated.locale) == ("New", None, "en-US")
    assert unchanged == updated
    with _tx(vendor.id) as conn:
        row = conn.execute("SELECT seq FROM audit_log WHERE action = 'customer.updated'").fetchone()
        changes = read_changes(conn, vendor.id, row["seq"])
    assert changes.before["name"] == "Old" and changes.after == {**changes.before, "name": "New", "email": None}


def test_delete_erases_pii_hides_the_customer_and_a_new_create_revives_it(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    caller = _admin(vendor.id)
    with _tx(vendor.id) as conn:
        created = records.create(conn, caller, REQUEST, NewCustomer(external_id="d1", name="Del", email="d@x.io"))
        records.delete(conn, caller, REQUEST, created.id)
        with pytest.raises(NotFound):
            records.get(conn, caller, created.id)
        with pytest.raises(NotFound):
            records.update(conn, caller, REQUEST, created.id, CustomerChanges(name="Ghost"))
        with pytest.raises(NotFound):
            records.delete(conn, caller, REQUEST, created.id)
    with database.admin() as conn:
        assert conn.execute("SELECT name, email, status FROM customers WHERE id = %s",
                            (created.id,)).fetchone() == (None, None, "deleted")
    with _tx(vendor.id) as conn:
        revived = records.create(conn, caller, REQUEST, NewCustomer(external_id="d1", name="Back"))
        actions = [r["action"] for r in conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert (revived.id, revived.name, revived.email, revived.status) == (created.id, "Back", None, "active")
    assert actions == ["customer.created", "customer.deleted", "customer.created"]


def test_locale_and_status_cannot_be_cleared():
    for cleared in ({"locale": None}, {"status": None}):
        with pytest.raises(ValidationError, match="cannot be null"):
            CustomerChanges.model_validate(cleared)
    assert CustomerChanges.model_validate({"name": None}).model_fields_set == {"name"}
