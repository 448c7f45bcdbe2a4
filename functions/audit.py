"""The vendor's HIPAA audit trail: search, CSV export (itself audited) and hash-chain verification."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from nutrimatch.api import create_app, current_caller, lambda_handler, request_info, tenant_transaction
from nutrimatch.audit import VerifyResult, search, verify
from nutrimatch.audit.search import AuditPage, AuditQuery

app = create_app()


@app.get("/api/v1/audit", summary="Search the audit trail, newest first; format=csv exports (and is audited)")
def find(query: Annotated[AuditQuery, Query()]) -> Response[AuditPage | str]:
    caller = current_caller(app)
    with tenant_transaction(caller) as conn:
        if query.format == "json":
            return Response(200, content_types.APPLICATION_JSON, search.search(conn, caller, query))
        export = search.export_csv(conn, caller, request_info(app), query)
    headers = {"Content-Disposition": 'attachment; filename="audit.csv"'}
    if export.next_cursor:
        headers["X-Next-Cursor"] = export.next_cursor
    return Response(200, "text/csv; charset=utf-8", export.csv_text, headers=headers)


@app.get("/api/v1/audit/verify", summary="Recompute the vendor's hash chain; reports the first broken link")
def check() -> VerifyResult:
    caller = current_caller(app)
    with tenant_transaction(caller, read_only=True) as conn:
        return verify(conn, caller.require_vendor())


handler = lambda_handler(app)
