"""A job cancelled through the jobs API while its file is still arriving: its upload goes with it, so that no later
tus PATCH or multipart complete can finish the file and revive the job."""

from __future__ import annotations

from uuid import UUID

from nutrimatch.db import Connection
from nutrimatch.uploads import multipart, tus
from nutrimatch.uploads.storage import UploadStore


def drop_open_upload(conn: Connection, store: UploadStore, vendor_id: UUID, job_id: UUID) -> None:
    """Abort the job's S3 multipart upload and delete its scratch objects and tus upload, if the job still awaits
    its file; a job past its upload keeps everything. The caller cancels the job in the same transaction."""
    tus.forget_open_upload(conn, store, vendor_id, job_id)
    multipart.discard_open_upload(conn, store, vendor_id, job_id)
