"""Health profile persistence: encrypted at rest under the vendor's data key, one version per write.

Contract (matching relies on it):
  load_profile(conn, vendor_id, customer_id) -> StoredProfile | None   decrypts; NotFound for a missing or
                                                                        deleted customer; None: no profile
  profile_version(conn, vendor_id, customer_id) -> int | None          no decryption (for cache keys); same
                                                                        NotFound rule

The profile and the limits derived from it are sealed together (the limits reveal the conditions) with the
associated data (table, vendor, customer, version). Versions only grow: erasing a profile is a write too, so
a version number is never reused for different contents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from pydantic_core import to_json

from nutrimatch.crypto import Sealed, associated_data, current_data_key, open_sealed, seal, unwrap
from nutrimatch.db import Connection
from nutrimatch.errors import NotFound
from nutrimatch.health.limits import DerivedLimits, derive_limits
from nutrimatch.health.profile import HealthProfile

_TABLE = "customer_health_profiles"

_CUSTOMER_AND_PROFILE = """
SELECT c.status, p.version, p.data_key_version, p.nonce, p.sealed_profile, p.updated_at, k.wrapped_key
  FROM customers c
  LEFT JOIN customer_health_profiles p ON p.vendor_id = c.vendor_id AND p.customer_id = c.id
  LEFT JOIN vendor_data_keys k ON k.vendor_id = p.vendor_id AND k.version = p.data_key_version
 WHERE c.vendor_id = %s AND c.id = %s
"""
_CUSTOMER_AND_VERSION = """
SELECT c.status, p.version, p.sealed_profile IS NOT NULL AS present
  FROM customers c LEFT JOIN customer_health_profiles p ON p.vendor_id = c.vendor_id AND p.customer_id = c.id
 WHERE c.vendor_id = %s AND c.id = %s
"""
# Writers of one customer's profile queue on the customer row, so versions never collide.
_LOCK_CUSTOMER = "SELECT status FROM customers WHERE vendor_id = %s AND id = %s FOR UPDATE"
_UPSERT = """
INSERT INTO customer_health_profiles
       (vendor_id, customer_id, version, data_key_version, nonce, sealed_profile, updated_at, updated_by)
VALUES (%(vendor_id)s, %(customer_id)s, %(version)s, %(key_version)s, %(nonce)s, %(sealed)s, now(), %(by)s)
ON CONFLICT (vendor_id, customer_id) DO UPDATE
   SET version = EXCLUDED.version, data_key_version = EXCLUDED.data_key_version, nonce = EXCLUDED.nonce,
       sealed_profile = EXCLUDED.sealed_profile, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
RETURNING version, updated_at
"""
_ERASE = """
UPDATE customer_health_profiles
   SET version = version + 1, data_key_version = NULL, nonce = NULL, sealed_profile = NULL, updated_at = now(),
       updated_by = %s
 WHERE vendor_id = %s AND customer_id = %s
"""


class StoredProfile(BaseModel):
    """A decrypted profile with the limits derived from it when it was written."""

    model_config = ConfigDict(frozen=True)

    customer_id: UUID
    version: int
    profile: HealthProfile
    limits: DerivedLimits
    updated_at: datetime

    def limits_on(self, today: date) -> DerivedLimits:
        """The limits as they are derived on `today`: those stored with the profile, unless its birth date has
        made the person older since (age decides children's sugar and sodium limits, and energy)."""
        if self.profile.birth_date is None or self.profile.age_on(today) == self.limits.age_years:
            return self.limits
        return derive_limits(self.profile, today=today)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The profile and limits are PHI: whatever logs this object must not print them.
        yield "customer_id", self.customer_id
        yield "version", self.version


def _context(vendor_id: UUID, customer_id: UUID, version: int) -> bytes:
    return associated_data(_TABLE, vendor_id, customer_id, version)


def _require_customer(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None or row["status"] == "deleted":
        raise NotFound("customer not found")
    return row


def _decrypted(vendor_id: UUID, customer_id: UUID, row: dict[str, Any]) -> StoredProfile | None:
    if row["sealed_profile"] is None:
        return None
    key = unwrap(vendor_id, row["data_key_version"], row["wrapped_key"])
    plaintext = open_sealed(key, Sealed(bytes(row["nonce"]), bytes(row["sealed_profile"])),
                            _context(vendor_id, customer_id, row["version"]))
    document = json.loads(plaintext)
    return StoredProfile(customer_id=customer_id, version=row["version"], updated_at=row["updated_at"],
                         profile=HealthProfile.model_validate(document["profile"]),
                         limits=DerivedLimits.model_validate(document["limits"]))


def load_profile(conn: Connection, vendor_id: UUID, customer_id: UUID) -> StoredProfile | None:
    """The customer's decrypted profile, or None if they have none. Does not audit: the caller records why."""
    row = _require_customer(conn.execute(_CUSTOMER_AND_PROFILE, (vendor_id, customer_id)).fetchone())
    return _decrypted(vendor_id, customer_id, row)


def profile_version(conn: Connection, vendor_id: UUID, customer_id: UUID) -> int | None:
    """The version of the customer's current profile (None: no profile), without decrypting anything."""
    row = _require_customer(conn.execute(_CUSTOMER_AND_VERSION, (vendor_id, customer_id)).fetchone())
    return int(row["version"]) if row["present"] else None


def save_profile(conn: Connection, vendor_id: UUID, customer_id: UUID, profile: HealthProfile,
                 limits: DerivedLimits, *, updated_by: str) -> tuple[StoredProfile | None, StoredProfile]:
    """Seal and store a new version; returns (the version it replaced, the new one)."""
    _require_customer(conn.execute(_LOCK_CUSTOMER, (vendor_id, customer_id)).fetchone())
    current = conn.execute(_CUSTOMER_AND_PROFILE, (vendor_id, customer_id)).fetchone()
    assert current is not None
    previous = _decrypted(vendor_id, customer_id, current)
    version = (current["version"] or 0) + 1
    key = current_data_key(conn, vendor_id)
    document = to_json({"profile": profile.model_dump(mode="json"), "limits": limits.model_dump(mode="json")})
    sealed = seal(key, document, _context(vendor_id, customer_id, version))
    saved = conn.execute(_UPSERT, {"vendor_id": vendor_id, "customer_id": customer_id, "version": version,
                                   "key_version": key.version, "nonce": sealed.nonce, "sealed": sealed.ciphertext,
                                   "by": updated_by}).fetchone()
    assert saved is not None
    return previous, StoredProfile(customer_id=customer_id, version=saved["version"], profile=profile,
                                   limits=limits, updated_at=saved["updated_at"])


def erase_profile(conn: Connection, vendor_id: UUID, customer_id: UUID, *, updated_by: str) -> StoredProfile | None:
    """Destroy the profile's ciphertext (keeping its version count); returns what was erased, if anything."""
    current = conn.execute(_CUSTOMER_AND_PROFILE, (vendor_id, customer_id)).fetchone()
    erased = _decrypted(vendor_id, customer_id, current) if current is not None else None
    if erased is not None:
        conn.execute(_ERASE, (updated_by, vendor_id, customer_id))
    return erased
