"""The HIPAA audit trail: append-only, hash-chained per vendor, PHI in before/after sealed.

Contract:
  record(conn, *, vendor_id, actor_user_id, actor_role, action, entity, entity_id, request, before=None,
         after=None) -> None        one row, in the given transaction
  verify(conn, vendor_id) -> VerifyResult(ok, checked, first_broken_seq, reason)
"""

from nutrimatch.audit.actor import Actor, record_by
from nutrimatch.audit.chain import AuditChanges, VerifyResult, read_changes, record, verify
from nutrimatch.audit.context import RequestInfo

__all__ = ["Actor", "AuditChanges", "RequestInfo", "VerifyResult", "read_changes", "record", "record_by", "verify"]
