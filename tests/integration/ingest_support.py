"""Helpers for ingestion tests: a job whose object is already in S3, run through the real local pipeline."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from nutrimatch import aws
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.ingest.executions import LocalStarter
from nutrimatch.ingest.jobs import fetch
from nutrimatch.ingest.trigger import UploadedObject, start_ingestion
from nutrimatch.settings import get_settings


def create_uploaded_job(vendor_id: uuid.UUID, data: bytes, *, kind: str = "products", mode: str = "upsert",
                        file_name: str = "catalog.csv", content_sha256: str | None = None) -> UploadedObject:
    settings = get_settings()
    job_id = uuid.uuid4()
    key = f"incoming/{vendor_id}/{job_id}/{file_name}"
    aws.client("s3").put_object(Bucket=settings.upload_bucket, Key=key, Body=data)
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        conn.execute(
            """INSERT INTO ingestion_jobs (id, vendor_id, kind, mode, status, file_name, size_bytes, content_sha256,
                                           s3_bucket, s3_key, upload_method, created_by)
               VALUES (%s, %s, %s, %s, 'uploaded', %s, %s, %s, %s, %s, 'multipart', 'test')""",
            (job_id, vendor_id, kind, mode, file_name, len(data), content_sha256, settings.upload_bucket, key))
    return UploadedObject(settings.upload_bucket, key, vendor_id, job_id)


def run_job(uploaded: UploadedObject, timeout: float = 120) -> dict[str, Any]:
    """Trigger the job as the S3 notification would, wait for its execution, return the job row."""
    assert start_ingestion(get_database(), LocalStarter(), uploaded)
    execution = LocalStarter.runtime().wait(str(uploaded.job_id), timeout)
    assert execution.status != "RUNNING", "the pipeline did not finish in time"
    with scoped_transaction(get_database().writer, uploaded.vendor_id) as conn:
        return fetch(conn, uploaded.vendor_id, uploaded.job_id)


def ingest(vendor_id: uuid.UUID, data: bytes, **options: Any) -> dict[str, Any]:
    return run_job(create_uploaded_job(vendor_id, data, **options))


def errors_of(vendor_id: uuid.UUID, job_id: uuid.UUID) -> list[dict[str, Any]]:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return conn.execute("SELECT row_number, column_name, value, reason FROM ingestion_errors "
                            "WHERE vendor_id = %s AND job_id = %s ORDER BY row_number, column_name",
                            (vendor_id, job_id)).fetchall()


def products_of(vendor_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        rows = conn.execute("SELECT * FROM products WHERE vendor_id = %s", (vendor_id,)).fetchall()
    return {row["external_id"]: row for row in rows}


def finishes_within(seconds: float, step: Callable[..., Any], *args: Any) -> Any:
    """`step(*args)` run in a daemon thread: its result, or a failed test if it still runs after `seconds` (a
    step stuck for good must fail the test, not hang the session)."""
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(step(*args))
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{step.__name__} still runs after {seconds} s"
    if failure:
        raise failure[0]
    return outcome[0]
