"""From an S3 ObjectCreated notification to one execution of the ingestion pipeline per job.

Notifications repeat (moto sends two for a completed multipart upload; SQS delivers at least once). The job's
status moves to `queued` exactly once, in the same transaction that starts the execution named after the job,
so a repeat starts nothing — and a failed start rolls the status back for SQS's next try.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus
from uuid import UUID

from nutrimatch.db import Database, scoped_transaction
from nutrimatch.ingest.executions import ExecutionStarter

_KEY = re.compile(r"^incoming/(?P<vendor>[0-9a-f-]{36})/(?P<job>[0-9a-f-]{36})/.+$")
STARTABLE = ("awaiting_upload", "uploading", "uploaded")


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    key: str
    vendor_id: UUID
    job_id: UUID


def parse_record(record: dict[str, Any]) -> UploadedObject | None:
    """The job an S3 event record is about; None for test events and keys outside incoming/."""
    if not record.get("eventName", "").startswith("ObjectCreated"):
        return None
    bucket = record["s3"]["bucket"]["name"]
    key = unquote_plus(record["s3"]["object"]["key"])
    match = _KEY.match(key)
    if not match:
        return None
    return UploadedObject(bucket, key, UUID(match["vendor"]), UUID(match["job"]))


def start_ingestion(database: Database, starter: ExecutionStarter, uploaded: UploadedObject) -> bool:
    """True when this call started the job's pipeline; False when it was already started or not startable."""
    with scoped_transaction(database.writer, uploaded.vendor_id) as conn:
        job = conn.execute(
            """UPDATE ingestion_jobs SET status = 'queued', phase = 'queued', updated_at = now(),
                      uploaded_at = coalesce(uploaded_at, now())
                WHERE vendor_id = %s AND id = %s AND s3_key = %s AND status = ANY(%s)
            RETURNING id""", (uploaded.vendor_id, uploaded.job_id, uploaded.key, list(STARTABLE))).fetchone()
        if job is None:
            return False
        return starter.start(str(uploaded.job_id), {
            "job_id": str(uploaded.job_id), "vendor_id": str(uploaded.vendor_id),
            "bucket": uploaded.bucket, "key": uploaded.key})
