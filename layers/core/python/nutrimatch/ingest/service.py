"""What the jobs API offers: a job with its live progress and errors.csv link, listing, cancel, mappings."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from nutrimatch.db import Connection
from nutrimatch.errors import InvalidInput
from nutrimatch.ingest import jobs
from nutrimatch.ingest.fields import IngestKind, fields_of
from nutrimatch.ingest.finalize import announce_merged_rows, emit, errors_key
from nutrimatch.ingest.jobs import Job
from nutrimatch.ingest.plan import remember_mapping
from nutrimatch.settings import get_settings
from nutrimatch.uploads.cancel import drop_open_upload
from nutrimatch.uploads.storage import UploadStore

ERRORS_LINK_SECONDS = 3600


class JobPage(BaseModel):
    jobs: list[Job]
    next_before: datetime | None = Field(None, description="Pass as `before` for the next page")


class HeaderMappingEntry(BaseModel):
    header: str = Field(min_length=1, max_length=200, description="A column header as it appears in files")
    field: str | None = Field(description="The field it means; null to ignore the column")


class MappingUpdate(BaseModel):
    kind: IngestKind = IngestKind.PRODUCTS
    mappings: list[HeaderMappingEntry] = Field(min_length=1, max_length=500)


class LearnedMapping(BaseModel):
    kind: str
    header_normalized: str
    field: str | None
    confirmed_by: str
    updated_at: datetime


def describe(conn: Connection, s3: Any, row: dict[str, Any]) -> Job:
    job = Job(**{k: v for k, v in row.items() if k in Job.model_fields})
    job.progress = jobs.progress(conn, row)
    if row["counts"].get("error_rows"):
        job.errors_csv_url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": row["s3_bucket"], "Key": errors_key(row["vendor_id"], row["id"])},
            ExpiresIn=ERRORS_LINK_SECONDS)
    return job


def get_job(conn: Connection, s3: Any, vendor_id: UUID, job_id: UUID) -> Job:
    return describe(conn, s3, jobs.fetch(conn, vendor_id, job_id))


def list_jobs(conn: Connection, s3: Any, vendor_id: UUID, *, status: str | None, before: datetime | None,
              limit: int) -> JobPage:
    rows = jobs.list_jobs(conn, vendor_id, status=status, before=before, limit=limit)
    page = [describe(conn, s3, row) for row in rows]
    return JobPage(jobs=page, next_before=page[-1].created_at if len(page) == limit else None)


def cancel_job(conn: Connection, s3: Any, vendor_id: UUID, job_id: UUID) -> Job:
    drop_open_upload(conn, UploadStore.from_settings(get_settings()), vendor_id, job_id)
    cancelled = jobs.cancel(conn, vendor_id, job_id)
    announce_merged_rows(conn, cancelled)
    emit(conn, vendor_id, "job.cancelled", {"job_id": str(job_id), "kind": cancelled["kind"],
                                            "mode": cancelled["mode"]})
    return describe(conn, s3, jobs.fetch(conn, vendor_id, job_id))


def learned(conn: Connection, vendor_id: UUID) -> list[LearnedMapping]:
    rows = conn.execute("SELECT kind, header_normalized, field, confirmed_by, updated_at FROM header_mappings "
                        "WHERE vendor_id = %s ORDER BY kind, header_normalized", (vendor_id,)).fetchall()
    return [LearnedMapping(**row) for row in rows]


def confirm(conn: Connection, vendor_id: UUID, update: MappingUpdate, user: str) -> list[LearnedMapping]:
    """Remember what the vendor says a header means; the next file's plan uses it before any synonym."""
    known = {target.name for target in fields_of(update.kind)}
    unknown = sorted({m.field for m in update.mappings if m.field is not None and m.field not in known})
    if unknown:
        raise InvalidInput(f"unknown field(s) for {update.kind}: {', '.join(unknown)}",
                           details={"expected": sorted(known)})
    for entry in update.mappings:
        remember_mapping(conn, vendor_id, update.kind.value, entry.header, entry.field, user)
    return learned(conn, vendor_id)
