"""Ingestion jobs with presigned S3 multipart uploads: create, resume, complete, abort."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from nutrimatch.api import create_app, current_caller, lambda_handler
from nutrimatch.uploads import UploadContext, multipart
from nutrimatch.uploads.jobs import IngestionJob
from nutrimatch.uploads.multipart import CompleteUpload, NewCsvUpload, UploadPlan

app = create_app()


@app.post("/api/v1/ingest/csv", summary="Create an ingestion job and its multipart upload; returns part URLs")
def create(new: NewCsvUpload) -> Response[UploadPlan]:
    caller = current_caller(app)
    plan = multipart.start(UploadContext.current(), caller.require_vendor(), new, caller.user_id)
    return Response(201, content_types.APPLICATION_JSON, plan,
                    headers={"Location": f"/api/v1/ingest/jobs/{plan.job.id}/upload"})


@app.get("/api/v1/ingest/jobs/<jobId>/upload", summary="Parts S3 holds, and fresh URLs for the missing ones")
def upload_status(job_id: UUID = Path(alias="jobId"),
                  first_part: Annotated[int, Query(ge=1, le=10_000)] = 1) -> UploadPlan:
    caller = current_caller(app)
    return multipart.status(UploadContext.current(), caller.require_vendor(), job_id, first_part)


@app.post("/api/v1/ingest/jobs/<jobId>/upload/complete", summary="Complete the upload: the file goes to ingestion")
def complete(request: CompleteUpload, job_id: UUID = Path(alias="jobId")) -> IngestionJob:
    caller = current_caller(app)
    return multipart.complete(UploadContext.current(), caller.require_vendor(), job_id, request)


@app.delete("/api/v1/ingest/jobs/<jobId>/upload", summary="Abort the upload and cancel the job")
def abort(job_id: UUID = Path(alias="jobId")) -> IngestionJob:
    caller = current_caller(app)
    return multipart.abort(UploadContext.current(), caller.require_vendor(), job_id)


handler = lambda_handler(app)
