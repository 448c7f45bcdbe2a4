"""Ingestion jobs as the uploads see them: created with their upload, moved to `uploaded` or `cancelled`.

The ingestion pipeline takes a job over from `uploaded` on (queued, running, completed or failed).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from nutrimatch.db import Connection
from nutrimatch.errors import Conflict, NotFound
from nutrimatch.ingest.fields import IngestKind


class JobMode(StrEnum):
    UPSERT = "upsert"
    REPLACE = "replace"


def mode_problem(kind: IngestKind, mode: JobMode) -> str | None:
    """Why a file of `kind` cannot be ingested in `mode`, or None. `replace` retires the products a file no longer
    lists; customers a file does not list are not deleted (that erases their health data): only merged."""
    if mode is JobMode.REPLACE and kind is not IngestKind.PRODUCTS:
        return f"replace is for products; a {kind.value} file is merged into what is there (mode upsert)"
    return None


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class UploadMethod(StrEnum):
    MULTIPART = "multipart"
    TUS = "tus"


UPLOAD_OPEN = (JobStatus.AWAITING_UPLOAD, JobStatus.UPLOADING)


class IngestionJob(BaseModel):
    id: UUID
    kind: IngestKind
    mode: JobMode
    status: JobStatus
    file_name: str
    content_type: str
    size_bytes: int
    content_sha256: str | None
    s3_bucket: str
    s3_key: str
    upload_method: UploadMethod
    multipart_upload_id: str | None
    part_size: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    uploaded_at: datetime | None
    error: dict[str, Any] | None


_COLUMNS = """id, kind, mode, status, file_name, content_type, size_bytes, content_sha256, s3_bucket, s3_key,
              upload_method, multipart_upload_id, part_size, created_by, created_at, updated_at, uploaded_at, error"""

INSERT_JOB = f"""
INSERT INTO ingestion_jobs (id, vendor_id, kind, mode, file_name, content_type, size_bytes, content_sha256,
                            s3_bucket, s3_key, upload_method, multipart_upload_id, part_size, created_by)
VALUES (%(id)s, %(vendor_id)s, %(kind)s, %(mode)s, %(file_name)s, %(content_type)s, %(size_bytes)s,
        %(content_sha256)s, %(s3_bucket)s, %(s3_key)s, %(upload_method)s, %(multipart_upload_id)s, %(part_size)s,
        %(created_by)s)
RETURNING {_COLUMNS}"""

LOCK_JOB = f"SELECT {_COLUMNS} FROM ingestion_jobs WHERE vendor_id = %s AND id = %s AND upload_method = %s FOR UPDATE"
LOCK_OPEN_JOB = f"""SELECT {_COLUMNS} FROM ingestion_jobs
                     WHERE vendor_id = %s AND id = %s AND upload_method = %s AND status = ANY(%s) FOR UPDATE"""

SET_STATUS = f"""
UPDATE ingestion_jobs
   SET status = %(status)s, updated_at = now(), error = coalesce(%(error)s, error),
       uploaded_at = CASE WHEN %(status)s = 'uploaded' THEN now() ELSE uploaded_at END,
       finished_at = CASE WHEN %(status)s IN ('failed', 'cancelled') THEN now() ELSE finished_at END
 WHERE vendor_id = %(vendor_id)s AND id = %(id)s
RETURNING {_COLUMNS}"""


def insert(conn: Connection, values: dict[str, Any]) -> IngestionJob:
    row = conn.execute(INSERT_JOB, values).fetchone()
    assert row is not None
    return IngestionJob(**row)


def lock(conn: Connection, vendor_id: UUID, job_id: UUID, method: UploadMethod) -> IngestionJob:
    """The job, locked for this transaction; another vendor's job, or one uploaded another way, is not found."""
    row = conn.execute(LOCK_JOB, (vendor_id, job_id, method.value)).fetchone()
    if row is None:
        raise NotFound("ingestion job not found")
    return IngestionJob(**row)


def lock_open(conn: Connection, vendor_id: UUID, job_id: UUID, method: UploadMethod) -> IngestionJob | None:
    """The job, locked for this transaction, if it was uploaded `method`'s way and its upload is still open."""
    row = conn.execute(LOCK_OPEN_JOB, (vendor_id, job_id, method.value, [s.value for s in UPLOAD_OPEN])).fetchone()
    return IngestionJob(**row) if row is not None else None


def require_open(job: IngestionJob) -> None:
    if job.status not in UPLOAD_OPEN:
        raise Conflict(f"the job's upload is over (job status: {job.status.value})",
                       details={"status": job.status.value})


def set_status(conn: Connection, vendor_id: UUID, job_id: UUID, status: JobStatus,
               error: dict[str, Any] | None = None) -> IngestionJob:
    row = conn.execute(SET_STATUS, {"status": status.value, "error": Jsonb(error) if error else None,
                                    "vendor_id": vendor_id, "id": job_id}).fetchone()
    assert row is not None
    return IngestionJob(**row)
