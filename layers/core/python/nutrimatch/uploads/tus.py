"""A tus 1.0 server over S3 multipart uploads: core protocol, creation, creation-with-upload, termination,
checksum (sha1, md5, sha256) and expiration.

How bytes become an object (as tusd's s3store does): each PATCH body is appended to the bytes after the last
part (the *tail*, parked as a scratch object). When that buffer reaches the upload's minimum part size
(5 MiB, or more for uploads too large for 10,000 such parts) it is written as the next multipart part;
otherwise it becomes the new tail. The final byte writes the rest as the last part and completes the upload,
and the job moves to `uploaded`. A handler holds at most one chunk and one tail in memory.

State (offset, parts, tail, expiry) lives in PostgreSQL, so any instance can serve the next request. A PATCH
holds the upload's row lock (`FOR UPDATE NOWAIT`) while it writes: a concurrent PATCH gets 423 Locked, and a
HEAD waits for the PATCH in flight, so it never reports an offset about to change.

A chunk is at most MAX_CHUNK_BYTES (4 MiB, see there); OPTIONS advertises it as `Tus-Max-Chunk-Size`. Every
PATCH pushes the expiry `tus_expiry_hours` further; an upload left unfinished past it answers 410 Gone until
`expire` removes it, and 404 from then on. Cancelling the job through the jobs API forgets its upload too (404);
a PATCH to an upload whose job is no longer awaiting its bytes answers 410 Gone (unless its object is complete,
as below).

A final PATCH can complete the object in S3 and then fail before PostgreSQL records it. Its retry finds the
multipart upload gone; when the job's object is there (this job's id, the declared size), the retry records the
upload finished instead of failing, so the client need not send the file again as a new job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from uuid import UUID

import psycopg
from botocore.exceptions import ClientError
from psycopg.types.json import Jsonb

from nutrimatch.db import Connection, scoped_transaction
from nutrimatch.errors import Conflict, DomainError, Gone, InvalidInput, NotFound, PayloadTooLarge
from nutrimatch.ingest.fields import IngestKind
from nutrimatch.uploads import UploadContext, csvcheck, jobs
from nutrimatch.uploads.jobs import UPLOAD_OPEN, IngestionJob, JobMode, JobStatus, UploadMethod
from nutrimatch.uploads.storage import MAX_PARTS, MIN_PART_BYTES, UploadStore, error_code, object_key, tail_key

TUS_VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "termination", "checksum", "expiration")
CHECKSUMS: dict[str, Callable[[bytes], Any]] = {"sha1": hashlib.sha1, "md5": hashlib.md5, "sha256": hashlib.sha256}
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# The binding limit on a chunk is not API Gateway's 10 MB request payload but the 6 MB payload of a synchronous
# Lambda invocation: the chunk travels base64-encoded (4/3 larger) inside the proxy event. 4 MiB of body is
# 5.6 MB encoded, which leaves room for the rest of the event.
MAX_CHUNK_BYTES = 4 * 1024**2
HEAD_LOCK_WAIT = "10s"
RECENT_TAILS = 2


class _RecentTails:
    """The last tails this process wrote. A client's next PATCH usually reaches the same warm instance, which
    then need not read its tail back from S3. Tail keys name one immutable state, so a hit is never stale."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.tails: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def remember(self, key: str, data: bytes) -> None:
        with self.lock:
            self.tails[key] = data
            while len(self.tails) > self.size:
                self.tails.popitem(last=False)

    def read(self, store: UploadStore, key: str) -> bytes:
        with self.lock:
            data = self.tails.pop(key, None)
        return data if data is not None else store.read(key)


_recent_tails = _RecentTails(RECENT_TAILS)


class BadRequest(DomainError):
    code = "bad_request"


class UnsupportedVersion(DomainError):
    code = "unsupported_tus_version"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class ChecksumMismatch(DomainError):
    code = "checksum_mismatch"


class UploadLocked(Conflict):
    code = "upload_locked"


# The protocol's own statuses, beside the product's mapping of domain errors (nutrimatch.api).
HTTP_STATUS: dict[type[DomainError], int] = {
    BadRequest: 400, UnsupportedVersion: 412, UnsupportedMediaType: 415, ChecksumMismatch: 460, UploadLocked: 423,
}


@dataclass
class TusUpload:
    id: UUID
    job_id: UUID
    upload_length: int
    upload_offset: int
    raw_metadata: str | None
    expires_at: datetime
    completed_at: datetime | None
    tail_key: str | None = None
    tail_size: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.completed_at is not None


@dataclass(frozen=True)
class UploadOptions:
    kind: IngestKind
    mode: JobMode
    file_name: str
    content_type: str


_UPLOAD_COLUMNS = """u.id, u.job_id, u.upload_length, u.upload_offset, u.raw_metadata, u.expires_at, u.completed_at,
                     u.tail_key, u.tail_size, u.parts"""
SELECT_UPLOAD = f"SELECT {_UPLOAD_COLUMNS} FROM tus_uploads u WHERE u.vendor_id = %s AND u.id = %s"
INSERT_UPLOAD = """
INSERT INTO tus_uploads (id, vendor_id, job_id, upload_length, raw_metadata, metadata, expires_at)
VALUES (%s, %s, %s, %s, %s, %s, now() + %s)"""
SAVE_PROGRESS = """
UPDATE tus_uploads
   SET upload_offset = %(offset)s, parts = %(parts)s, tail_key = %(tail_key)s, tail_size = %(tail_size)s,
       expires_at = CASE WHEN %(final)s THEN expires_at ELSE now() + %(expiry)s END,
       completed_at = CASE WHEN %(final)s THEN now() END, updated_at = now()
 WHERE vendor_id = %(vendor_id)s AND id = %(id)s"""
DELETE_UPLOAD = "DELETE FROM tus_uploads WHERE vendor_id = %s AND id = %s"
EXPIRED_UPLOADS = "SELECT id, vendor_id FROM expired_tus_uploads(%s)"
LOCK_EXPIRED = f"""SELECT {_UPLOAD_COLUMNS} FROM tus_uploads u
                    WHERE u.vendor_id = %s AND u.id = %s AND u.completed_at IS NULL AND u.expires_at < now()
                      FOR UPDATE SKIP LOCKED"""
LOCK_UNFINISHED_OF_JOB = f"""SELECT {_UPLOAD_COLUMNS} FROM tus_uploads u
                              WHERE u.vendor_id = %s AND u.job_id = %s AND u.completed_at IS NULL FOR UPDATE"""


# --- headers ------------------------------------------------------------------------------------------------
def server_headers(max_size: int) -> dict[str, str]:
    """What OPTIONS advertises."""
    return {
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Max-Size": str(max_size), "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        "Tus-Max-Chunk-Size": str(MAX_CHUNK_BYTES),
    }


def error_headers(error: DomainError) -> dict[str, str]:
    """What an error answer carries beside Tus-Resumable: a 412 names the versions the server speaks."""
    return {"Tus-Version": TUS_VERSION} if isinstance(error, UnsupportedVersion) else {}


def upload_headers(upload: TusUpload) -> dict[str, str]:
    """Upload-Offset and, while the upload is unfinished, Upload-Expires (RFC 9110 date)."""
    headers = {"Upload-Offset": str(upload.upload_offset), "Ingestion-Job-Id": str(upload.job_id)}
    if not upload.finished:
        headers["Upload-Expires"] = format_datetime(upload.expires_at.astimezone(UTC), usegmt=True)
    return headers


def status_headers(upload: TusUpload) -> dict[str, str]:
    """What HEAD answers."""
    headers = {**upload_headers(upload), "Upload-Length": str(upload.upload_length), "Cache-Control": "no-store"}
    if upload.raw_metadata:
        headers["Upload-Metadata"] = upload.raw_metadata
    return headers


def parse_metadata(header: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs (the value may be absent)."""
    pairs: dict[str, str] = {}
    for item in (header or "").split(","):
        if not item.strip():
            continue
        key, _, encoded = item.strip().partition(" ")
        if key in pairs:
            raise BadRequest(f"Upload-Metadata names {key!r} twice")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise BadRequest(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from error
    return pairs


def upload_options(metadata: Mapping[str, str]) -> UploadOptions:
    """The job options carried by Upload-Metadata: kind, mode (default upsert), filename (or name), filetype."""
    problems: dict[str, str] = {}
    kind = mode = None
    try:
        kind = IngestKind(metadata.get("kind", ""))
    except ValueError:
        problems["kind"] = f"must be one of {', '.join(IngestKind)}"
    try:
        mode = JobMode(metadata.get("mode") or JobMode.UPSERT)
    except ValueError:
        problems["mode"] = f"must be one of {', '.join(JobMode)}"
    if kind is not None and mode is not None and (problem := jobs.mode_problem(kind, mode)):
        problems["mode"] = problem
    name = metadata.get("filename") or metadata.get("name") or ""
    if not name:
        problems["filename"] = "is required"
    if problems or kind is None or mode is None:
        raise InvalidInput("Upload-Metadata must carry kind, mode and filename: "
                           + "; ".join(f"{k} {v}" for k, v in problems.items()), details=problems)
    return UploadOptions(kind, mode, csvcheck.safe_file_name(name),
                         csvcheck.content_type(metadata.get("filetype") or metadata.get("type")))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name.lower())
    return value.strip() if value is not None else None


def _integer(headers: Mapping[str, str], name: str) -> int | None:
    value = _header(headers, name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):  # isdigit alone passes '²', which int() refuses
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value)


def _check_version(headers: Mapping[str, str]) -> None:
    if _header(headers, "Tus-Resumable") != TUS_VERSION:
        raise UnsupportedVersion(f"send Tus-Resumable: {TUS_VERSION}", details={"tus_version": TUS_VERSION})


def _check_checksum(headers: Mapping[str, str], body: bytes) -> None:
    value = _header(headers, "Upload-Checksum")
    if value is None:
        return
    algorithm, _, digest = value.partition(" ")
    if algorithm not in CHECKSUMS:
        raise BadRequest(f"checksum algorithm {algorithm!r} is not supported",
                         details={"supported": sorted(CHECKSUMS)})
    try:
        expected = base64.b64decode(digest.strip(), validate=True)
    except binascii.Error as error:
        raise BadRequest("Upload-Checksum must be `<algorithm> <base64 digest>`") from error
    actual = CHECKSUMS[algorithm](body).digest()
    if len(expected) != len(actual):  # no chunk can match it: the header is wrong, not the data
        raise BadRequest(f"Upload-Checksum must carry a {len(actual)}-byte {algorithm} digest in base64")
    if actual != expected:
        raise ChecksumMismatch(f"the chunk's {algorithm} does not match Upload-Checksum; the chunk was discarded")


def min_part_size(upload_length: int) -> int:
    """S3's 5 MiB minimum, or more when 10,000 parts of 5 MiB would not hold the upload."""
    return max(MIN_PART_BYTES, -(-upload_length // MAX_PARTS))


# --- operations ---------------------------------------------------------------------------------------------
def create(ctx: UploadContext, vendor_id: UUID, created_by: str, headers: Mapping[str, str],
           body: bytes) -> TusUpload:
    """POST: a job, its multipart upload and the tus upload; with a body, its first chunk too."""
    _check_version(headers)
    if _header(headers, "Upload-Defer-Length") is not None:
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length")
    length = _integer(headers, "Upload-Length")
    if length is None:
        raise BadRequest("Upload-Length is required")
    if length > ctx.settings.max_upload_bytes:
        raise PayloadTooLarge(f"Upload-Length is over the {ctx.settings.max_upload_bytes}-byte limit",
                              details={"max_upload_bytes": ctx.settings.max_upload_bytes})
    if length == 0:
        raise InvalidInput("the file is empty: a CSV needs at least a header row")
    raw_metadata = _header(headers, "Upload-Metadata")
    metadata = parse_metadata(raw_metadata)
    options = upload_options(metadata)
    if body:  # a refused first chunk must leave nothing behind: the client gets no Location to clean it up
        _check_body(headers, body, 0, length)
    job_id, upload_id = uuid.uuid4(), uuid.uuid4()
    key = object_key(vendor_id, job_id, options.file_name)
    multipart_id = ctx.store.create_multipart(key, options.content_type, job_id)
    with scoped_transaction(ctx.database.writer, vendor_id) as conn:
        jobs.insert(conn, {
            "id": job_id, "vendor_id": vendor_id, "kind": options.kind.value, "mode": options.mode.value,
            "file_name": options.file_name, "content_type": options.content_type, "size_bytes": length,
            "content_sha256": None, "s3_bucket": ctx.store.bucket, "s3_key": key,
            "upload_method": UploadMethod.TUS.value, "multipart_upload_id": multipart_id,
            "part_size": min_part_size(length), "created_by": created_by})
        conn.execute(INSERT_UPLOAD, (upload_id, vendor_id, job_id, length, raw_metadata, Jsonb(metadata),
                                     timedelta(hours=ctx.settings.tus_expiry_hours)))
    if body:
        return append(ctx, vendor_id, upload_id, {**headers, "upload-offset": "0"}, body)
    return status(ctx, vendor_id, upload_id, headers)


def status(ctx: UploadContext, vendor_id: UUID, upload_id: UUID, headers: Mapping[str, str]) -> TusUpload:
    """HEAD: waits for a PATCH in flight, so the offset it reports is settled."""
    with scoped_transaction(ctx.database.writer, vendor_id) as conn:
        conn.execute(f"SET LOCAL lock_timeout = '{HEAD_LOCK_WAIT}'")
        upload = _find(conn, vendor_id, upload_id, "FOR SHARE")
    _check_version(headers)
    _check_alive(upload)
    return upload


def append(ctx: UploadContext, vendor_id: UUID, upload_id: UUID, headers: Mapping[str, str],
           body: bytes) -> TusUpload:
    """PATCH: append the chunk at Upload-Offset."""
    refusal: InvalidInput | None = None
    with scoped_transaction(ctx.database.writer, vendor_id) as conn:
        upload = _find(conn, vendor_id, upload_id, "FOR UPDATE NOWAIT")
        _check_version(headers)
        _check_alive(upload)
        offset = _check_offset(upload, headers)
        _check_body(headers, body, offset, upload.upload_length)
        job = jobs.lock(conn, vendor_id, upload.job_id, UploadMethod.TUS)
        old_tail = upload.tail_key
        if job.status not in UPLOAD_OPEN:
            # Cancelled through the jobs API, or taken over by the pipeline after a completion whose record was lost.
            if not _record_earlier_completion(conn, ctx, vendor_id, upload, job):
                raise Gone(f"the upload is over (job status: {job.status.value}); start a new one",
                           details={"status": job.status.value})
        elif not body:
            return upload
        else:
            buffer = _recent_tails.read(ctx.store, upload.tail_key) + body if upload.tail_key else body
            try:
                _check_head_once(upload, buffer)
            except InvalidInput as error:
                refusal = error
                old_tail = None
                _forget(conn, ctx.store, vendor_id, upload, job)
                jobs.set_status(conn, vendor_id, job.id, JobStatus.FAILED,
                                {"code": "not_csv", "message": error.message})
            else:
                _append_buffer(conn, ctx, vendor_id, upload, job, buffer, offset + len(body))
        if refusal is None:
            upload = _find(conn, vendor_id, upload_id, "")
    if refusal is not None:
        raise refusal
    if old_tail:
        ctx.store.delete(old_tail)
    return upload


def terminate(ctx: UploadContext, vendor_id: UUID, upload_id: UUID, headers: Mapping[str, str]) -> None:
    """DELETE: abort the multipart upload, drop the tail, forget the upload and cancel its job."""
    with scoped_transaction(ctx.database.writer, vendor_id) as conn:
        upload = _find(conn, vendor_id, upload_id, "FOR UPDATE NOWAIT")
        _check_version(headers)
        if upload.finished:
            raise Conflict("the upload is complete and its file handed to ingestion; it cannot be terminated")
        _cancel(conn, ctx.store, vendor_id, upload, {"code": "cancelled", "message": "the upload was terminated"})


def expire(ctx: UploadContext, limit: int = 100) -> int:
    """Remove unfinished uploads past their expiry (all vendors); returns how many were removed."""
    with scoped_transaction(ctx.database.writer, None) as conn:
        expired = conn.execute(EXPIRED_UPLOADS, (limit,)).fetchall()
    removed = 0
    for row in expired:
        with scoped_transaction(ctx.database.writer, row["vendor_id"]) as conn:
            found = conn.execute(LOCK_EXPIRED, (row["vendor_id"], row["id"])).fetchone()
            if found is None:
                continue  # finished, extended or being written since it was listed
            _cancel(conn, ctx.store, row["vendor_id"], TusUpload(**found),
                    {"code": "upload_expired", "message": "the tus upload expired before it was finished"})
            removed += 1
    return removed


def forget_open_upload(conn: Connection, store: UploadStore, vendor_id: UUID, job_id: UUID) -> None:
    """For the jobs API's cancel: forget the job's tus upload while the job still awaits its bytes, so no later
    PATCH can revive it. The caller cancels the job. The upload is locked before the job, in the order a PATCH
    takes them, so a PATCH in flight finishes first."""
    row = conn.execute(LOCK_UNFINISHED_OF_JOB, (vendor_id, job_id)).fetchone()
    if row is None:
        return
    job = jobs.lock_open(conn, vendor_id, job_id, UploadMethod.TUS)
    if job is not None:
        _forget(conn, store, vendor_id, TusUpload(**row), job)


# --- internals -----------------------------------------------------------------------------------------------
def _find(conn: Connection, vendor_id: UUID, upload_id: UUID, lock: str) -> TusUpload:
    try:
        row = conn.execute(f"{SELECT_UPLOAD} {lock}", (vendor_id, upload_id)).fetchone()
    except psycopg.errors.LockNotAvailable as error:
        raise UploadLocked("another request is writing to this upload; ask HEAD for the offset and retry") \
            from error
    if row is None:
        raise NotFound("upload not found")
    return TusUpload(**row)


def _check_alive(upload: TusUpload) -> None:
    if not upload.finished and upload.expires_at < datetime.now(upload.expires_at.tzinfo):
        raise Gone("the upload expired before it was finished; start a new one")


def _check_offset(upload: TusUpload, headers: Mapping[str, str]) -> int:
    offset = _integer(headers, "Upload-Offset")
    if offset is None:
        raise BadRequest("Upload-Offset is required")
    if offset != upload.upload_offset:
        raise Conflict(f"Upload-Offset {offset} is not the upload's offset {upload.upload_offset}",
                       details={"upload_offset": upload.upload_offset})
    return offset


def _check_body(headers: Mapping[str, str], body: bytes, offset: int, upload_length: int) -> None:
    """A chunk's media type, size and checksum, for a chunk going at `offset`."""
    media_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if media_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"upload bodies must be sent as {OFFSET_CONTENT_TYPE}")
    if len(body) > MAX_CHUNK_BYTES:
        raise PayloadTooLarge(f"a chunk is at most {MAX_CHUNK_BYTES} bytes (Tus-Max-Chunk-Size)")
    if offset + len(body) > upload_length:
        raise PayloadTooLarge("the chunk goes past Upload-Length",
                              details={"upload_length": upload_length, "upload_offset": offset})
    _check_checksum(headers, body)


def _check_head_once(upload: TusUpload, buffer: bytes) -> None:
    """Check the file's head for CSV in the PATCH that first holds all of it (it is in the buffer then)."""
    head_length = min(csvcheck.HEAD_BYTES, upload.upload_length)
    if not upload.parts and upload.tail_size < head_length <= len(buffer):
        csvcheck.check_head(buffer[:head_length])


def _write(store: UploadStore, key: str, multipart_id: str | None, upload: TusUpload, buffer: bytes,
           new_offset: int, vendor_id: UUID) -> None:
    """Write the buffer as the next part or as the new tail, and complete the upload at its last byte."""
    assert multipart_id is not None
    final = new_offset == upload.upload_length
    if final or len(buffer) >= min_part_size(upload.upload_length):
        number = len(upload.parts) + 1
        etag = store.upload_part(key, multipart_id, number, buffer)
        upload.parts.append({"part_number": number, "etag": etag, "size": len(buffer)})
        upload.tail_key, upload.tail_size = None, 0
    else:
        upload.tail_key, upload.tail_size = tail_key(vendor_id, upload.id, new_offset), len(buffer)
        store.put(upload.tail_key, buffer)
        _recent_tails.remember(upload.tail_key, buffer)
    upload.upload_offset = new_offset
    if final:
        store.complete(key, multipart_id, [(p["part_number"], p["etag"]) for p in upload.parts])
        upload.completed_at = datetime.now(UTC)


def _append_buffer(conn: Connection, ctx: UploadContext, vendor_id: UUID, upload: TusUpload, job: IngestionJob,
                   buffer: bytes, new_offset: int) -> None:
    """Write the buffer and record it; the job moves to `uploading`, or to `uploaded` at the last byte."""
    try:
        _write(ctx.store, job.s3_key, job.multipart_upload_id, upload, buffer, new_offset, vendor_id)
    except ClientError as error:
        # S3 answers NoSuchUpload once the multipart upload is completed or aborted (moto: a 500 for a part).
        if _record_earlier_completion(conn, ctx, vendor_id, upload, job):
            return
        if error_code(error) == "NoSuchUpload":
            raise Gone("the upload no longer exists in S3 (aborted or expired); start a new one") from error
        raise
    _save(conn, ctx, vendor_id, upload)
    if upload.finished:
        jobs.set_status(conn, vendor_id, job.id, JobStatus.UPLOADED)
    elif job.status is JobStatus.AWAITING_UPLOAD:
        jobs.set_status(conn, vendor_id, job.id, JobStatus.UPLOADING)


def _record_earlier_completion(conn: Connection, ctx: UploadContext, vendor_id: UUID, upload: TusUpload,
                               job: IngestionJob) -> bool:
    """Whether an earlier PATCH completed the object in S3 and failed before recording it; if so, record it now:
    the upload finished, and its job uploaded unless the pipeline has taken it over already."""
    if not ctx.store.holds_upload(job.s3_key, job.id, job.size_bytes):
        return False
    upload.upload_offset, upload.completed_at = upload.upload_length, datetime.now(UTC)
    upload.tail_key, upload.tail_size = None, 0
    _save(conn, ctx, vendor_id, upload)
    if job.status in UPLOAD_OPEN:
        jobs.set_status(conn, vendor_id, job.id, JobStatus.UPLOADED)
    return True


def _save(conn: Connection, ctx: UploadContext, vendor_id: UUID, upload: TusUpload) -> None:
    conn.execute(SAVE_PROGRESS, {
        "offset": upload.upload_offset, "parts": Jsonb(upload.parts), "tail_key": upload.tail_key,
        "tail_size": upload.tail_size, "final": upload.finished,
        "expiry": timedelta(hours=ctx.settings.tus_expiry_hours), "vendor_id": vendor_id, "id": upload.id})


def _discard(store: UploadStore, key: str, multipart_id: str | None, upload: TusUpload) -> None:
    if multipart_id is not None:
        store.abort(key, multipart_id)
    if upload.tail_key:
        store.delete(upload.tail_key)


def _forget(conn: Connection, store: UploadStore, vendor_id: UUID, upload: TusUpload, job: IngestionJob) -> None:
    """Abort the multipart upload, delete the tail and the upload's row; the job (locked) keeps its status."""
    _discard(store, job.s3_key, job.multipart_upload_id, upload)
    conn.execute(DELETE_UPLOAD, (vendor_id, upload.id))


def _cancel(conn: Connection, store: UploadStore, vendor_id: UUID, upload: TusUpload,
            reason: dict[str, str]) -> None:
    """Forget the upload and cancel its job, unless the pipeline has taken the job over: from `uploaded` on it is
    the pipeline's, as after a final PATCH that completed the object but failed before recording it."""
    job = jobs.lock(conn, vendor_id, upload.job_id, UploadMethod.TUS)
    _forget(conn, store, vendor_id, upload, job)
    if job.status in UPLOAD_OPEN:
        jobs.set_status(conn, vendor_id, job.id, JobStatus.CANCELLED, reason)
