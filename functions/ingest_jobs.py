"""Ingestion jobs: status, progress, counts, the mapping used, errors.csv; cancel; learned header mappings.

`stalled_handler` is the scheduled entry point that fails jobs whose pipeline stopped without finishing.
"""

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from nutrimatch import aws
from nutrimatch.api import create_app, current_caller, lambda_handler, tenant_transaction
from nutrimatch.db import get_database
from nutrimatch.ingest import service
from nutrimatch.ingest.finalize import fail_stalled
from nutrimatch.ingest.jobs import Job
from nutrimatch.ingest.service import JobPage, LearnedMapping, MappingUpdate
from nutrimatch.settings import get_settings

app = create_app()
Status = Literal["awaiting_upload", "uploading", "uploaded", "queued", "running", "completed", "failed", "cancelled"]


@app.get("/api/v1/ingest/jobs", summary="The vendor's ingestion jobs, newest first")
def list_jobs(status: Annotated[Status | None, Query()] = None,
              before: Annotated[datetime | None, Query(description="created_at of the last job seen")] = None,
              limit: Annotated[int, Query(ge=1, le=100)] = 20) -> JobPage:
    caller = current_caller(app)
    with tenant_transaction(caller, read_only=True) as conn:
        return service.list_jobs(conn, aws.client("s3"), caller.require_vendor(), status=status, before=before,
                                 limit=limit)


@app.get("/api/v1/ingest/jobs/<jobId>", summary="One job: status, phase, progress, counts, errors.csv link")
def get_job(job_id: UUID = Path(alias="jobId")) -> Job:
    caller = current_caller(app)
    with tenant_transaction(caller, read_only=True) as conn:
        return service.get_job(conn, aws.client("s3"), caller.require_vendor(), job_id)


@app.post("/api/v1/ingest/jobs/<jobId>/cancel", summary="Cancel a job; the pipeline stops at its next step")
def cancel(job_id: UUID = Path(alias="jobId")) -> Job:
    caller = current_caller(app)
    with tenant_transaction(caller) as conn:
        return service.cancel_job(conn, aws.client("s3"), caller.require_vendor(), job_id)


@app.get("/api/v1/ingest/mappings", summary="Header mappings the vendor confirmed or corrected")
def learned_mappings() -> list[LearnedMapping]:
    caller = current_caller(app)
    with tenant_transaction(caller, read_only=True) as conn:
        return service.learned(conn, caller.require_vendor())


@app.put("/api/v1/ingest/mappings", summary="Confirm or correct what headers mean, for the next files")
def confirm_mappings(update: MappingUpdate) -> list[LearnedMapping]:
    caller = current_caller(app)
    with tenant_transaction(caller) as conn:
        return service.confirm(conn, caller.require_vendor(), update, caller.user_id)


handler = lambda_handler(app)


def stalled_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Scheduled (hourly): fail the jobs whose pipeline stopped without finishing (timed out, stopped)."""
    idle = timedelta(seconds=get_settings().ingest_stalled_after_seconds)
    return {"failed": fail_stalled(get_database(), idle)}
