"""Searching and exporting a vendor's audit trail, newest first, in keyset pages.

Results carry no before/after content (those are sealed PHI), only whether each is present, plus the hashes
so a reader can check the chain themselves. An export is itself audited ("audit.exported").
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Self

from psycopg import sql
from pydantic import BaseModel, Field, model_validator

from nutrimatch.audit.actor import Actor, record_by
from nutrimatch.audit.context import RequestInfo
from nutrimatch.db import Connection
from nutrimatch.errors import InvalidInput

MAX_PAGE = 100
MAX_EXPORT_ROWS = 10_000
DEFAULT_PAGE = 50
# Spreadsheets run cells starting with these as formulas; user agents and justifications are caller-written.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_SELECT = """
SELECT seq, "timestamp", actor_user_id, actor_role, action, entity, entity_id, request_id, ip, ua, justification,
       before IS NOT NULL AS has_before, after IS NOT NULL AS has_after, encode(prev_hash, 'hex') AS prev_hash,
       encode(row_hash, 'hex') AS row_hash
  FROM audit_log WHERE {} ORDER BY seq DESC LIMIT %(limit)s
"""


class AuditQuery(BaseModel):
    entity_id: str | None = Field(default=None, description="e.g. a customer id")
    action: str | None = Field(default=None, description="e.g. health_profile.read")
    actor: str | None = Field(default=None, description="The acting user id")
    since: datetime | None = Field(default=None, description="Rows at or after this time (ISO 8601)")
    until: datetime | None = Field(default=None, description="Rows before this time (ISO 8601)")
    limit: int | None = Field(default=None, ge=1, le=MAX_EXPORT_ROWS,
                              description=f"Page size: ≤ {MAX_PAGE} (JSON), ≤ {MAX_EXPORT_ROWS} (CSV)")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")
    format: Literal["json", "csv"] = "json"

    @model_validator(mode="after")
    def _page_fits_the_format(self) -> Self:
        if self.format == "json" and self.limit is not None and self.limit > MAX_PAGE:
            raise ValueError(f"limit: at most {MAX_PAGE} rows per JSON page (use format=csv to export more)")
        return self

    @property
    def page_size(self) -> int:
        return self.limit or (DEFAULT_PAGE if self.format == "json" else MAX_EXPORT_ROWS)


class AuditEntry(BaseModel):
    seq: int
    timestamp: datetime
    actor_user_id: str
    actor_role: str
    action: str
    entity: str
    entity_id: str
    request_id: str | None
    ip: str | None
    ua: str | None
    justification: str | None
    has_before: bool
    has_after: bool
    prev_hash: str
    row_hash: str


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


@dataclass(frozen=True)
class AuditExport:
    csv_text: str
    rows: int
    next_cursor: str | None


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(struct.pack(">q", seq)).rstrip(b"=").decode()


def _before_seq(cursor: str) -> int:
    try:
        value: int = struct.unpack(">q", base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))[0]
    except (ValueError, binascii.Error, struct.error) as error:
        raise InvalidInput("cursor is not one this API returned", details={"field": "cursor"}) from error
    return value


def search(conn: Connection, actor: Actor, query: AuditQuery) -> AuditPage:
    filters = (
        ("entity_id", sql.SQL("entity_id = %(entity_id)s"), query.entity_id),
        ("action", sql.SQL("action = %(action)s"), query.action),
        ("actor", sql.SQL("actor_user_id = %(actor)s"), query.actor),
        ("since", sql.SQL('"timestamp" >= %(since)s'), query.since),
        ("until", sql.SQL('"timestamp" < %(until)s'), query.until),
        ("before_seq", sql.SQL("seq < %(before_seq)s"), _before_seq(query.cursor) if query.cursor else None),
    )
    params: dict[str, Any] = {"vendor_id": actor.require_vendor(), "limit": query.page_size + 1}
    conditions = [sql.SQL("vendor_id = %(vendor_id)s")]
    for name, condition, value in filters:
        if value is not None:
            conditions.append(condition)
            params[name] = value
    rows = conn.execute(sql.SQL(_SELECT).format(sql.SQL(" AND ").join(conditions)), params).fetchall()
    items = [AuditEntry(**row) for row in rows[:query.page_size]]
    more = len(rows) > query.page_size
    return AuditPage(items=items, next_cursor=_cursor(items[-1].seq) if more else None)


def _cell(value: Any) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def export_csv(conn: Connection, actor: Actor, request: RequestInfo, query: AuditQuery) -> AuditExport:
    """One page of the search as CSV, recorded in the trail as an export."""
    page = search(conn, actor, query)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = list(AuditEntry.model_fields)
    writer.writerow(columns)
    for item in page.items:
        writer.writerow([_cell(getattr(item, column)) for column in columns])
    record_by(conn, actor, request, action="audit.exported", entity="audit_log", entity_id=str(actor.require_vendor()),
              after={"filters": query.model_dump(mode="json", exclude_none=True), "rows": len(page.items)})
    return AuditExport(csv_text=out.getvalue(), rows=len(page.items), next_cursor=page.next_cursor)
