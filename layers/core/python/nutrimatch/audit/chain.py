"""Writing and verifying the per-vendor hash chain of audit_log.

Rows are appended only by the SQL function audit_append (sql/migrations/0013_audit_chain_without_a_hot_row.sql),
which holds the vendor's advisory lock until the transaction ends, so concurrent writers queue instead of forking
the chain, and records the head (the newest row) in one of 64 rows per vendor, none of them updated on every
append. The verifier recomputes every hash here, independently of SQL: `canonical_bytes` mirrors the SQL
`audit_canonical`.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic_core import to_json

from nutrimatch.audit.context import RequestInfo
from nutrimatch.crypto import DataKey, Sealed, associated_data, current_data_key, open_sealed, seal
from nutrimatch.crypto.envelope import data_key
from nutrimatch.db import Connection

GENESIS_HASH = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL_FIELD = b"\xff\xff\xff\xff"
_VERIFY_BATCH_ROWS = 2000

_APPEND = "SELECT audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_CHAIN = """
SELECT vendor_id, seq, "timestamp", actor_user_id, actor_role, action, entity, entity_id, request_id, ip, ua,
       justification, before, after, data_key_version, prev_hash, row_hash
  FROM audit_log WHERE vendor_id = %s AND seq <= %s ORDER BY seq
"""
_HEAD = "SELECT seq, row_hash FROM audit_chain_heads WHERE vendor_id = %s ORDER BY seq DESC LIMIT 1"
_CHANGES = """
SELECT entity, entity_id, request_id, before, after, data_key_version FROM audit_log WHERE vendor_id = %s AND seq = %s
"""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_seq: int | None
    reason: str | None


@dataclass(frozen=True)
class AuditChanges:
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _field(value: bytes | None) -> bytes:
    return _NULL_FIELD if value is None else struct.pack(">i", len(value)) + value


def _text(value: str | None) -> bytes:
    return _field(None if value is None else value.encode("utf-8"))


def canonical_bytes(row: dict[str, Any]) -> bytes:
    """The serialization a row's hash covers; must equal SQL audit_canonical() byte for byte."""
    micros = (row["timestamp"] - _EPOCH) // timedelta(microseconds=1)
    key_version = row["data_key_version"]
    return b"".join([
        UUID(str(row["vendor_id"])).bytes, struct.pack(">q", row["seq"]), struct.pack(">q", micros),
        *(_text(row[name]) for name in ("actor_user_id", "actor_role", "action", "entity", "entity_id",
                                         "request_id", "ip", "ua", "justification")),
        _field(None if row["before"] is None else bytes(row["before"])),
        _field(None if row["after"] is None else bytes(row["after"])),
        _field(None if key_version is None else struct.pack(">i", key_version)),
    ])


def row_hash(prev_hash: bytes, row: dict[str, Any]) -> bytes:
    return hashlib.sha256(prev_hash + canonical_bytes(row)).digest()


def _change_context(vendor_id: UUID, entity: str, entity_id: str, request_id: str | None, side: str) -> bytes:
    return associated_data("audit_log.change", vendor_id, entity, entity_id, request_id or "", side)


def _seal_change(key: DataKey, change: dict[str, Any] | None, context: bytes) -> bytes | None:
    return None if change is None else seal(key, to_json(change), context).to_bytes()


def record(conn: Connection, *, vendor_id: UUID, actor_user_id: str, actor_role: str, action: str, entity: str,
           entity_id: str, request: RequestInfo, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> None:
    """Append one audit row in the caller's transaction (it commits or rolls back with the access).

    before/after are sealed under the vendor's data key: they may hold PHI. The vendor's chain stays locked
    until the transaction ends, so call this as the last step of the transaction.
    """
    sealed: dict[str, bytes | None] = {"before": None, "after": None}
    key_version = None
    if before is not None or after is not None:
        key = current_data_key(conn, vendor_id)
        key_version = key.version
        for side, change in (("before", before), ("after", after)):
            context = _change_context(vendor_id, entity, entity_id, request.request_id, side)
            sealed[side] = _seal_change(key, change, context)
    conn.execute(_APPEND, (vendor_id, actor_user_id, str(actor_role), action, entity, entity_id, request.request_id,
                           request.ip, request.user_agent, request.justification, sealed["before"], sealed["after"],
                           key_version))


def read_changes(conn: Connection, vendor_id: UUID, seq: int) -> AuditChanges | None:
    """The decrypted before/after of one audit row (for investigations; itself PHI access)."""
    row = conn.execute(_CHANGES, (vendor_id, seq)).fetchone()
    if row is None:
        return None
    if row["data_key_version"] is None:
        return AuditChanges(None, None)
    key = data_key(conn, vendor_id, row["data_key_version"])

    def opened(side: str) -> dict[str, Any] | None:
        if row[side] is None:
            return None
        context = _change_context(vendor_id, row["entity"], row["entity_id"], row["request_id"], side)
        value: dict[str, Any] = json.loads(open_sealed(key, Sealed.from_bytes(row[side]), context))
        return value

    return AuditChanges(opened("before"), opened("after"))


def verify(conn: Connection, vendor_id: UUID) -> VerifyResult:
    """Walk the vendor's chain from the first row up to its head: gaps, broken links, altered rows, a missing
    tail. The head is read first: rows audited while the walk runs lie beyond it and are left for the next
    verification (read after them, they would look like a tail the head does not know)."""
    head = conn.execute(_HEAD, (vendor_id,)).fetchone()
    head_seq, head_hash = (head["seq"], bytes(head["row_hash"])) if head else (0, GENESIS_HASH)
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    with conn.cursor(name="audit_verify") as cursor:
        cursor.itersize = _VERIFY_BATCH_ROWS
        cursor.execute(_CHAIN, (vendor_id, head_seq))
        for row in cursor:
            seq = row["seq"]
            if seq != expected_seq:
                return VerifyResult(False, checked, expected_seq, f"row {expected_seq} is missing")
            if bytes(row["prev_hash"]) != expected_prev:
                return VerifyResult(False, checked, seq, "prev_hash does not match the previous row's hash")
            if row_hash(expected_prev, row) != bytes(row["row_hash"]):
                return VerifyResult(False, checked, seq, "the row's content does not match its hash")
            expected_prev, expected_seq, checked = bytes(row["row_hash"]), seq + 1, checked + 1
    if head_seq != checked or head_hash != expected_prev:
        return VerifyResult(False, checked, expected_seq,
                            f"the chain head is at row {head_seq} but the rows end at {checked}")
    return VerifyResult(True, checked, None, None)
