"""Deterministic row ids: the same (vendor, external id) always gives the same UUID, in Python and in SQL.

Mirrors the SQL function `entity_uuid` (sql/migrations/0002_tenancy.sql): UUIDv8 over SHA-256 of the vendor
id's 16 bytes followed by the external id in UTF-8.
"""

from __future__ import annotations

import hashlib
from uuid import UUID


def entity_uuid(vendor_id: UUID, external_id: str) -> UUID:
    digest = bytearray(hashlib.sha256(vendor_id.bytes + external_id.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return UUID(bytes=bytes(digest))
