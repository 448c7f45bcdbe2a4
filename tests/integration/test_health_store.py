"""Health profiles at rest: sealed under the vendor's KMS-wrapped data key, versioned, and the matching contract."""

from datetime import date
from uuid import UUID, uuid4

import psycopg
import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag

from nutrimatch import aws
from nutrimatch.api import Caller
from nutrimatch.audit import RequestInfo
from nutrimatch.crypto import Sealed, associated_data, current_data_key, open_sealed
from nutrimatch.crypto.envelope import unwrap
from nutrimatch.customers import health, records
from nutrimatch.customers.records import NewCustomer
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.errors import NotFound
from nutrimatch.health import HealthProfile, derive_limits
from nutrimatch.health.store import StoredProfile, load_profile, profile_version
from nutrimatch.routes import Role
from tests.e2e.customer_samples import SAMPLE_PROFILE, sample_customer

NOTE = "patient prefers the Oslo clinic; cousin has lupus"
PROFILE = {**SAMPLE_PROFILE, "conditions": ["chronic_kidney_disease", "celiac_disease"], "notes": NOTE,
           "avoid_allergens": ["sesame"]}
REQUEST = RequestInfo(request_id="req-1", ip="203.0.113.9", user_agent="pytest", justification=None)


def _clinician(vendor_id: UUID) -> Caller:
    return Caller(user_id="dr-who", role=Role.CLINICIAN, vendor_id=vendor_id)


def _write(vendor_id: UUID, customer_id: UUID, profile: dict) -> StoredProfile:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return health.write(conn, _clinician(vendor_id), REQUEST, customer_id, HealthProfile.model_validate(profile))


def _load(vendor_id: UUID, customer_id: UUID) -> StoredProfile | None:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return load_profile(conn, vendor_id, customer_id)


def test_the_stored_row_is_ciphertext(two_vendors, aws_resources, database):
    vendor_a, _ = two_vendors
    customer_id = UUID(sample_customer(vendor_a))
    _write(vendor_a.id, customer_id, PROFILE)
    with database.admin() as conn:
        row = conn.execute("SELECT t::text, sealed_profile, nonce FROM customer_health_profiles t "
                           "WHERE customer_id = %s", (customer_id,)).fetchone()
        key_row = conn.execute("SELECT t::text FROM vendor_data_keys t WHERE vendor_id = %s",
                               (vendor_a.id,)).fetchone()
    text, sealed, nonce = row[0], bytes(row[1]), bytes(row[2])
    for secret in ("chronic_kidney_disease", "celiac", "sesame", "Oslo", "lupus", "potassium", "height_cm"):
        assert secret not in text and secret.encode() not in sealed
    assert len(nonce) == 12
    key = current_data_key_for(vendor_a.id)
    assert key.material not in bytes(key_row[0], "utf-8") and key.material.hex() not in key_row[0]


def current_data_key_for(vendor_id: UUID):
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return current_data_key(conn, vendor_id)


def test_another_vendors_key_or_row_cannot_open_the_ciphertext(two_vendors, aws_resources, database):
    vendor_a, vendor_b = two_vendors
    customer_id = UUID(sample_customer(vendor_a))
    stored = _write(vendor_a.id, customer_id, PROFILE)
    sample_customer(vendor_b)  # gives vendor B its own data key
    with database.admin() as conn:
        nonce, ciphertext, wrapped = conn.execute(
            "SELECT p.nonce, p.sealed_profile, k.wrapped_key FROM customer_health_profiles p "
            "JOIN vendor_data_keys k ON k.vendor_id = p.vendor_id AND k.version = p.data_key_version "
            "WHERE p.customer_id = %s", (customer_id,)).fetchone()
    sealed = Sealed(bytes(nonce), bytes(ciphertext))
    key_a, key_b = current_data_key_for(vendor_a.id), current_data_key_for(vendor_b.id)
    assert key_a.material != key_b.material
    own_context = associated_data("customer_health_profiles", vendor_a.id, customer_id, stored.version)
    assert b"Oslo" in open_sealed(key_a, sealed, own_context)
    with pytest.raises(InvalidTag):  # vendor B's key
        open_sealed(key_b, sealed, own_context)
    with pytest.raises(InvalidTag):  # the right key, but the associated data names vendor B
        open_sealed(key_a, sealed, associated_data("customer_health_profiles", vendor_b.id, customer_id,
                                                   stored.version))
    with pytest.raises(InvalidTag):  # another version of the same row
        open_sealed(key_a, sealed, associated_data("customer_health_profiles", vendor_a.id, customer_id,
                                                   stored.version + 1))
    with pytest.raises(ClientError, match="InvalidCiphertext"):  # KMS unwraps A's key only in A's context
        aws.client("kms").decrypt(CiphertextBlob=bytes(wrapped), EncryptionContext={"vendor_id": str(vendor_b.id)})
    with pytest.raises(ClientError, match="InvalidCiphertext"):  # A's key, just used, is not cached for B
        unwrap(vendor_b.id, key_a.version, bytes(wrapped))


def test_a_ciphertext_moved_to_another_customer_does_not_open(two_vendors, aws_resources, database):
    vendor_a, _ = two_vendors
    first, second = UUID(sample_customer(vendor_a)), UUID(sample_customer(vendor_a))
    _write(vendor_a.id, first, PROFILE)
    with database.admin() as conn:
        conn.execute("""UPDATE customer_health_profiles t SET nonce = s.nonce, sealed_profile = s.sealed_profile,
                               version = s.version
                          FROM customer_health_profiles s WHERE s.customer_id = %s AND t.customer_id = %s""",
                     (first, second))
    with pytest.raises(InvalidTag):
        _load(vendor_a.id, second)


def test_each_write_is_a_new_version_with_its_derived_limits(two_vendors, aws_resources, database):
    vendor_a, _ = two_vendors
    customer_id = UUID(sample_customer(vendor_a))  # version 1: the sample profile
    second = _write(vendor_a.id, customer_id, PROFILE)
    third = _write(vendor_a.id, customer_id, {**PROFILE, "conditions": ["pregnancy"], "notes": None})
    assert (second.version, third.version) == (2, 3)
    loaded = _load(vendor_a.id, customer_id)
    assert loaded == third
    assert loaded.limits == derive_limits(loaded.profile, today=date.today())
    assert loaded.limits.potassium_mg is None and loaded.limits.protein_g.reasons == ["pregnancy"]
    with scoped_transaction(get_database().writer, vendor_a.id) as conn:
        assert profile_version(conn, vendor_a.id, customer_id) == 3


def test_contract_not_found_and_no_profile(two_vendors, aws_resources, database):
    vendor_a, vendor_b = two_vendors
    caller = _clinician(vendor_a.id)
    with scoped_transaction(get_database().writer, vendor_a.id) as conn:
        bare = records.create(conn, caller, REQUEST, NewCustomer(external_id="no-profile"))
        assert load_profile(conn, vendor_a.id, bare.id) is None
        assert profile_version(conn, vendor_a.id, bare.id) is None
        with pytest.raises(NotFound):
            load_profile(conn, vendor_a.id, uuid4())
        with pytest.raises(NotFound):
            profile_version(conn, vendor_a.id, uuid4())
    of_b = UUID(sample_customer(vendor_b))
    with pytest.raises(NotFound):  # another vendor's customer does not exist for vendor A
        _load(vendor_a.id, of_b)


def test_deleting_a_customer_erases_the_profile_and_versions_never_repeat(two_vendors, aws_resources, database):
    vendor_a, _ = two_vendors
    customer_id = UUID(sample_customer(vendor_a))
    _write(vendor_a.id, customer_id, PROFILE)  # version 2
    caller = _clinician(vendor_a.id)
    with scoped_transaction(get_database().writer, vendor_a.id) as conn:
        external_id = records.get(conn, caller, customer_id).external_id
        records.delete(conn, caller, REQUEST, customer_id)
        with pytest.raises(NotFound):
            load_profile(conn, vendor_a.id, customer_id)
    with database.admin() as conn:
        row = conn.execute("SELECT version, sealed_profile, nonce FROM customer_health_profiles "
                           "WHERE customer_id = %s", (customer_id,)).fetchone()
    assert row == (3, None, None)
    with scoped_transaction(get_database().writer, vendor_a.id) as conn:
        again = records.create(conn, caller, REQUEST, NewCustomer(external_id=external_id))
        assert again.id == customer_id and profile_version(conn, vendor_a.id, customer_id) is None
    assert _write(vendor_a.id, customer_id, PROFILE).version == 4


def test_the_app_role_cannot_delete_profiles_or_rewrite_keys(two_vendors, aws_resources, database):
    vendor_a, _ = two_vendors
    sample_customer(vendor_a)
    for statement in ("DELETE FROM customer_health_profiles", "UPDATE vendor_data_keys SET wrapped_key = ''",
                      "DELETE FROM vendor_data_keys"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with scoped_transaction(get_database().writer, vendor_a.id) as conn:
                conn.execute(statement)


def test_concurrent_first_writes_share_one_vendor_key(two_vendors, aws_resources, database):
    from concurrent.futures import ThreadPoolExecutor

    vendor_a, _ = two_vendors
    caller = _clinician(vendor_a.id)
    with ThreadPoolExecutor(4) as pool:
        def create(n: int) -> UUID:
            with scoped_transaction(get_database().writer, vendor_a.id) as conn:
                customer = records.create(conn, caller, REQUEST, NewCustomer(external_id=f"c-{n}"))
                health.write(conn, caller, REQUEST, customer.id, HealthProfile.model_validate(PROFILE))
                return customer.id
        ids = list(pool.map(create, range(8)))
    with database.admin() as conn:
        assert conn.execute("SELECT count(*) FROM vendor_data_keys WHERE vendor_id = %s",
                            (vendor_a.id,)).fetchone() == (1,)
    assert all(_load(vendor_a.id, customer_id).profile.notes == NOTE for customer_id in ids)
