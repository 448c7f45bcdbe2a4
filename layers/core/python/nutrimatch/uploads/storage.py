"""The upload bucket: where an upload's object goes, and the S3 multipart calls both upload methods make.

Keys:
- `incoming/{vendor}/{job}/{file name}` — the finished object; the bucket notifies the ingest queue of it.
- `tus-scratch/…` — objects that must never start an ingest: tus tails, and the first part of a presigned
  multipart upload, which the client PUTs here so that it can be checked for CSV before it joins the upload
  (S3 cannot read a part of an unfinished multipart upload). A lifecycle rule expires them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from nutrimatch import aws
from nutrimatch.settings import Settings

INCOMING_PREFIX = "incoming/"
SCRATCH_PREFIX = "tus-scratch/"
MIN_PART_BYTES = 5 * 1024**2
MAX_PARTS = 10_000
LIST_PARTS_PAGE = 1000
JOB_ID_METADATA = "job-id"


@dataclass(frozen=True)
class StoredPart:
    part_number: int
    etag: str
    size: int


def object_key(vendor_id: UUID, job_id: UUID, file_name: str) -> str:
    return f"{INCOMING_PREFIX}{vendor_id}/{job_id}/{file_name}"


def head_part_key(vendor_id: UUID, job_id: UUID) -> str:
    return f"{SCRATCH_PREFIX}multipart/{vendor_id}/{job_id}/part-00001"


def tail_key(vendor_id: UUID, upload_id: UUID, offset: int) -> str:
    # One key per tail state: a tail is never overwritten, so a crash between writing the new tail and
    # recording it leaves the recorded tail intact.
    return f"{SCRATCH_PREFIX}tus/{vendor_id}/{upload_id}/tail-{offset:012d}"


def same_etag(a: str, b: str) -> bool:
    return a.strip().strip('"') == b.strip().strip('"')


class UploadStore:
    """The bucket's multipart and scratch-object operations, over a boto3 S3 client (AWS or moto)."""

    def __init__(self, s3: Any, bucket: str, presign_expiry_seconds: int) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.presign_expiry_seconds = presign_expiry_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadStore:
        return cls(aws.client("s3", settings), settings.upload_bucket, settings.presign_expiry_seconds)

    # --- multipart -------------------------------------------------------------------------------------------
    def create_multipart(self, key: str, content_type: str, job_id: UUID) -> str:
        response = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type,
                                                   Metadata={JOB_ID_METADATA: str(job_id)})
        return str(response["UploadId"])

    def presign_part(self, key: str, upload_id: str, part_number: int) -> str:
        return str(self.s3.generate_presigned_url(
            "upload_part", ExpiresIn=self.presign_expiry_seconds,
            Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number}))

    def presign_put(self, key: str) -> str:
        return str(self.s3.generate_presigned_url(
            "put_object", ExpiresIn=self.presign_expiry_seconds, Params={"Bucket": self.bucket, "Key": key}))

    def list_parts(self, key: str, upload_id: str) -> Iterator[StoredPart]:
        """Every part S3 holds for the upload, in part order; raises NoSuchUpload as a ClientError."""
        marker = 0
        while True:
            page = self.s3.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id, MaxParts=LIST_PARTS_PAGE,
                                      PartNumberMarker=marker)
            for part in page.get("Parts", []):
                yield StoredPart(int(part["PartNumber"]), str(part["ETag"]), int(part["Size"]))
            if not page.get("IsTruncated"):
                return
            marker = int(page["NextPartNumberMarker"])

    def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        response = self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=part_number,
                                       Body=data)
        return str(response["ETag"])

    def copy_part(self, key: str, upload_id: str, part_number: int, source_key: str) -> str:
        response = self.s3.upload_part_copy(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=part_number,
                                            CopySource={"Bucket": self.bucket, "Key": source_key})
        return str(response["CopyPartResult"]["ETag"])

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]})

    def abort(self, key: str, upload_id: str) -> None:
        """Abort the multipart upload; one that is already gone is fine."""
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if error_code(error) != "NoSuchUpload":
                raise

    # --- single objects --------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def read(self, key: str, length: int | None = None) -> bytes:
        """The object's bytes, or its first `length` bytes."""
        extra = {"Range": f"bytes=0-{length - 1}"} if length else {}
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read()
        return body

    def stat(self, key: str) -> StoredPart | None:
        """Size and ETag of a single object (as part 1 of an upload), or None when it is not there."""
        head = self._head(key)
        return StoredPart(1, str(head["ETag"]), int(head["ContentLength"])) if head is not None else None

    def holds_upload(self, key: str, job_id: UUID, size: int) -> bool:
        """Whether `key` holds the job's finished object: how a completion that S3 carried out, but whose record
        was lost, shows (its multipart upload is gone then)."""
        head = self._head(key)
        return (head is not None and head.get("Metadata", {}).get(JOB_ID_METADATA) == str(job_id)
                and int(head["ContentLength"]) == size)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
