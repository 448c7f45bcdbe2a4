"""Presigned S3 multipart uploads: the client PUTs parts straight to S3, may resume, then asks us to complete.

Part N covers bytes [(N-1)·part_size, N·part_size) of the file; all parts but the last are exactly
`part_size`. Part 1's URL is a plain PUT to a scratch object (see nutrimatch.uploads.storage): at completion
its first bytes are checked for CSV and only then is it copied into the multipart upload, so a file that is
not CSV never reaches `incoming/` and never starts an ingest. To the client every URL is the same: PUT the
part's bytes (with `Content-Type: application/octet-stream`) and keep the response's ETag.

URLs come in pages of at most URL_PAGE parts (a 10 GiB file has 1,280 parts of 8 MiB); `next_first_part`
says where the next page starts: `GET …/upload?first_part=N`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from nutrimatch.db import Connection, scoped_transaction
from nutrimatch.errors import Conflict, DomainError, Gone, InvalidInput, PayloadTooLarge
from nutrimatch.ingest.fields import IngestKind
from nutrimatch.uploads import UploadContext, csvcheck, jobs
from nutrimatch.uploads.jobs import IngestionJob, JobMode, JobStatus, UploadMethod
from nutrimatch.uploads.storage import (
    MAX_PARTS,
    StoredPart,
    UploadStore,
    error_code,
    head_part_key,
    object_key,
    same_etag,
)

MIB = 1024**2
MIN_PART_SIZE = 8 * MIB
URL_PAGE = 1000


def part_size_for(size_bytes: int) -> int:
    """At least 8 MiB, in whole MiB, large enough that the file fits S3's 10,000 parts."""
    needed = -(-size_bytes // MAX_PARTS)
    return max(MIN_PART_SIZE, -(-needed // MIB) * MIB)


def part_count(size_bytes: int, part_size: int) -> int:
    return -(-size_bytes // part_size)


def expected_part_size(size_bytes: int, part_size: int, part_number: int) -> int:
    return min(part_size, size_bytes - (part_number - 1) * part_size)


class CompletedEarlier(Conflict):
    """S3 completed the upload (its object is at the job's key) but recording that failed."""

    code = "upload_complete"


class NewCsvUpload(BaseModel):
    kind: IngestKind
    mode: JobMode = JobMode.UPSERT
    file_name: str = Field(min_length=1, max_length=500)
    size_bytes: int = Field(gt=0, description="The file's exact size; the parts must add up to it.")
    content_type: str | None = Field(default=None, description="A CSV media type; text/csv when absent.")
    content_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$",
                                       description="Hex SHA-256 of the file, recorded with the job.")

    @field_validator("mode")
    @classmethod
    def _mode_fits_kind(cls, mode: JobMode, info: ValidationInfo) -> JobMode:
        problem = jobs.mode_problem(info.data["kind"], mode) if "kind" in info.data else None
        if problem:
            raise ValueError(problem)
        return mode


class PartUrl(BaseModel):
    part_number: int
    url: str


class UploadedPart(BaseModel):
    part_number: int
    etag: str
    size: int


class UploadPlan(BaseModel):
    job: IngestionJob
    upload_id: str
    part_size: int = Field(description="Size of every part but the last, which holds the rest.")
    part_count: int
    uploaded_parts: list[UploadedPart] = Field(description="Parts S3 already holds; upload the others.")
    urls: list[PartUrl] = Field(description="Presigned PUT URLs of missing parts, from first_part on.")
    urls_expire_at: datetime
    next_first_part: int | None = Field(description="More URLs: GET …/upload?first_part=<this>.")


class CompletedPart(BaseModel):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=200)


class CompleteUpload(BaseModel):
    parts: list[CompletedPart] = Field(min_length=1, max_length=MAX_PARTS)


def start(ctx: UploadContext, vendor_id: UUID, new: NewCsvUpload, created_by: str) -> UploadPlan:
    """Create the job and its multipart upload; the plan holds the first page of part URLs."""
    content_type = csvcheck.content_type(new.content_type)
    file_name = csvcheck.safe_file_name(new.file_name)
    limit = ctx.settings.max_upload_bytes
    if new.size_bytes > limit:
        raise PayloadTooLarge(f"the file is larger than the {limit}-byte upload limit",
                              details={"size_bytes": new.size_bytes, "max_upload_bytes": limit})
    job_id = uuid.uuid4()
    key = object_key(vendor_id, job_id, file_name)
    part_size = part_size_for(new.size_bytes)
    upload_id = ctx.store.create_multipart(key, content_type, job_id)
    with scoped_transaction(ctx.database.writer, vendor_id) as conn:
        job = jobs.insert(conn, {
            "id": job_id, "vendor_id": vendor_id, "kind": new.kind.value, "mode": new.mode.value,
            "file_name": file_name, "content_type": content_type, "size_bytes": new.size_bytes,
            "content_sha256": new.content_sha256.lower() if new.content_sha256 else None,
            "s3_bucket": ctx.store.bucket, "s3_key": key, "upload_method": UploadMethod.MULTIPART.value,
            "multipart_upload_id": upload_id, "part_size": part_size, "created_by": created_by})
    return _plan(ctx.store, job, vendor_id, {}, first_part=1)


def status(ctx: UploadContext, vendor_id: UUID, job_id: UUID, first_part: int = 1) -> UploadPlan:
    """The parts S3 holds and fresh URLs for the missing ones (resume after a crash or expired URLs)."""
    with scoped_transaction(ctx.database.writer, vendor_id) as conn:
        job = jobs.lock(conn, vendor_id, job_id, UploadMethod.MULTIPART)
        jobs.require_open(job)
        stored = _stored_parts(ctx, vendor_id, job)
        if stored and job.status is JobStatus.AWAITING_UPLOAD:
            job = jobs.set_status(conn, vendor_id, job_id, JobStatus.UPLOADING)
    return _plan(ctx.store, job, vendor_id, stored, first_part)


def complete(ctx: UploadContext, vendor_id: UUID, job_id: UUID, request: CompleteUpload) -> IngestionJob:
    """Check the client's part list against S3 and the file's head against CSV, then complete the upload."""
    _check_order(request.parts)
    refusal: DomainError | None = None
    with scoped_transaction(ctx.database.writer, vendor_id) as conn:
        job = jobs.lock(conn, vendor_id, job_id, UploadMethod.MULTIPART)
        jobs.require_open(job)
        head_key = head_part_key(vendor_id, job_id)
        try:
            stored = _stored_parts(ctx, vendor_id, job)
        except CompletedEarlier:
            # A retry: S3 completed the upload but recording it failed. Answer as the first call would have.
            ctx.store.delete(head_key)
            return jobs.set_status(conn, vendor_id, job_id, JobStatus.UPLOADED)
        _check_parts(job, request.parts, stored)
        try:
            csvcheck.check_head(ctx.store.read(head_key, csvcheck.HEAD_BYTES))
        except InvalidInput as error:
            refusal = error
            _discard(ctx.store, job, head_key)
            job = jobs.set_status(conn, vendor_id, job_id, JobStatus.FAILED,
                                  {"code": "not_csv", "message": error.message})
        else:
            assert job.multipart_upload_id is not None
            first = ctx.store.copy_part(job.s3_key, job.multipart_upload_id, 1, head_key)
            ctx.store.complete(job.s3_key, job.multipart_upload_id,
                               [(1, first)] + [(p.part_number, stored[p.part_number].etag) for p in request.parts[1:]])
            ctx.store.delete(head_key)
            job = jobs.set_status(conn, vendor_id, job_id, JobStatus.UPLOADED)
    if refusal is not None:
        raise refusal
    return job


def abort(ctx: UploadContext, vendor_id: UUID, job_id: UUID) -> IngestionJob:
    """Abort the multipart upload (S3 drops its parts) and cancel the job."""
    with scoped_transaction(ctx.database.writer, vendor_id) as conn:
        job = jobs.lock(conn, vendor_id, job_id, UploadMethod.MULTIPART)
        jobs.require_open(job)
        _discard(ctx.store, job, head_part_key(vendor_id, job_id))
        return jobs.set_status(conn, vendor_id, job_id, JobStatus.CANCELLED,
                               {"code": "cancelled", "message": "the upload was cancelled"})


def discard_open_upload(conn: Connection, store: UploadStore, vendor_id: UUID, job_id: UUID) -> None:
    """For the jobs API's cancel: abort the job's multipart upload while the job still awaits its parts, so no
    later complete can finish it. The caller cancels the job."""
    job = jobs.lock_open(conn, vendor_id, job_id, UploadMethod.MULTIPART)
    if job is not None:
        _discard(store, job, head_part_key(vendor_id, job_id))


def _discard(store: UploadStore, job: IngestionJob, head_key: str) -> None:
    assert job.multipart_upload_id is not None
    store.abort(job.s3_key, job.multipart_upload_id)
    store.delete(head_key)


def _stored_parts(ctx: UploadContext, vendor_id: UUID, job: IngestionJob) -> dict[int, StoredPart]:
    assert job.multipart_upload_id is not None
    try:
        stored = {part.part_number: part for part in ctx.store.list_parts(job.s3_key, job.multipart_upload_id)}
    except ClientError as error:
        if error_code(error) != "NoSuchUpload":
            raise
        if ctx.store.holds_upload(job.s3_key, job.id, job.size_bytes):
            raise CompletedEarlier("the upload is complete and its file went to ingestion",
                                   details={"status": JobStatus.UPLOADED.value}) from error
        raise Gone("the upload no longer exists in S3 (aborted or expired): start a new one") from error
    # Part 1 waits as a scratch object until completion; whatever S3 holds as part 1 does not count.
    stored.pop(1, None)
    head = ctx.store.stat(head_part_key(vendor_id, job.id))
    if head is not None:
        stored[1] = head
    return stored


def _plan(store: UploadStore, job: IngestionJob, vendor_id: UUID, stored: dict[int, StoredPart],
          first_part: int) -> UploadPlan:
    assert job.multipart_upload_id is not None
    assert job.part_size is not None
    count = part_count(job.size_bytes, job.part_size)
    missing = [n for n in range(max(first_part, 1), count + 1) if n not in stored]
    page, rest = missing[:URL_PAGE], missing[URL_PAGE:]
    urls = [PartUrl(part_number=n, url=store.presign_put(head_part_key(vendor_id, job.id)) if n == 1
                    else store.presign_part(job.s3_key, job.multipart_upload_id, n)) for n in page]
    return UploadPlan(
        job=job, upload_id=job.multipart_upload_id, part_size=job.part_size, part_count=count,
        uploaded_parts=[UploadedPart(part_number=p.part_number, etag=p.etag, size=p.size)
                        for _, p in sorted(stored.items())],
        urls=urls, urls_expire_at=datetime.now(UTC) + timedelta(seconds=store.presign_expiry_seconds),
        next_first_part=rest[0] if rest else None)


def _check_order(parts: list[CompletedPart]) -> None:
    numbers = [part.part_number for part in parts]
    duplicates = sorted(n for n, times in Counter(numbers).items() if times > 1)
    out_of_order = [b for a, b in pairwise(numbers) if b < a]
    if duplicates or out_of_order:
        raise InvalidInput("parts must be listed once each, in ascending part_number order",
                           details={"duplicates": duplicates, "out_of_order": out_of_order})


def _check_parts(job: IngestionJob, parts: list[CompletedPart], stored: dict[int, StoredPart]) -> None:
    assert job.part_size is not None
    count = part_count(job.size_bytes, job.part_size)
    listed = {part.part_number: part.etag for part in parts}
    problems: dict[str, Any] = {
        "missing": [n for n in range(1, count + 1) if n not in listed],
        "unknown": sorted(n for n in listed if n > count),
        "not_uploaded": sorted(n for n in listed if n <= count and n not in stored),
        "etag_mismatch": [
            {"part_number": n, "sent": etag, "stored": stored[n].etag}
            for n, etag in sorted(listed.items()) if n in stored and not same_etag(etag, stored[n].etag)],
        "wrong_size": [
            {"part_number": n, "size": part.size, "expected": expected_part_size(job.size_bytes, job.part_size, n)}
            for n, part in sorted(stored.items())
            if n <= count and part.size != expected_part_size(job.size_bytes, job.part_size, n)],
    }
    problems = {name: found for name, found in problems.items() if found}
    if problems:
        raise InvalidInput(
            f"the part list does not match the upload ({', '.join(problems)}); GET …/upload shows what S3 holds",
            details={"part_count": count, "part_size": job.part_size, **problems})
