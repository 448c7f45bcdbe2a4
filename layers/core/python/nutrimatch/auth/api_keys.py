"""API keys for machine clients: shown once, stored as a SHA-256 hash, recognisable by their prefix."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from nutrimatch.db import Database, scoped_transaction
from nutrimatch.errors import NotFound
from nutrimatch.routes import Role

KEY_PREFIX = "nmk_"
# The visible part that identifies a key in listings and logs without revealing it.
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8
# Roles a vendor admin may hand to a machine: never platform-wide, never the admin's own.
GRANTABLE_ROLES = frozenset({Role.API_CLIENT, Role.ANALYST, Role.CATALOG_MANAGER, Role.CLINICIAN})


class NewApiKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.API_CLIENT

    @field_validator("role")
    @classmethod
    def grantable(cls, role: Role) -> Role:
        if role not in GRANTABLE_ROLES:
            raise ValueError(f"API keys may carry one of: {', '.join(sorted(GRANTABLE_ROLES))}")
        return role


class ApiKey(BaseModel):
    id: UUID
    name: str
    prefix: str
    role: Role
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedApiKey(ApiKey):
    key: str = Field(description="The secret key. Shown once: store it now.")


def hash_key(key: str) -> bytes:
    # Keys carry 256 bits of randomness, so a fast hash is safe here (no dictionary to attack).
    return hashlib.sha256(key.encode()).digest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and len(value) > DISPLAY_PREFIX_LENGTH


def create(database: Database, vendor_id: UUID, new: NewApiKey, created_by: str) -> CreatedApiKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with scoped_transaction(database.writer, vendor_id) as conn:
        row = conn.execute(
            """INSERT INTO api_keys (id, vendor_id, name, prefix, key_hash, role, created_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               RETURNING id, name, prefix, role, created_by, created_at, last_used_at, revoked_at""",
            (uuid.uuid4(), vendor_id, new.name, key[:DISPLAY_PREFIX_LENGTH], hash_key(key), new.role.value,
             created_by),
        ).fetchone()
    assert row is not None
    return CreatedApiKey(**row, key=key)


def list_keys(database: Database, vendor_id: UUID) -> list[ApiKey]:
    with scoped_transaction(database.writer, vendor_id) as conn:
        rows = conn.execute(
            """SELECT id, name, prefix, role, created_by, created_at, last_used_at, revoked_at
                 FROM api_keys WHERE vendor_id = %s ORDER BY created_at, id""", (vendor_id,)).fetchall()
    return [ApiKey(**row) for row in rows]


def revoke(database: Database, vendor_id: UUID, key_id: UUID) -> ApiKey:
    with scoped_transaction(database.writer, vendor_id) as conn:
        row = conn.execute(
            """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
                WHERE vendor_id = %s AND id = %s
            RETURNING id, name, prefix, role, created_by, created_at, last_used_at, revoked_at""",
            (vendor_id, key_id)).fetchone()
    if row is None:
        raise NotFound("API key not found")
    return ApiKey(**row)
