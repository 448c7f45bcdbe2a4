"""Shared by the upload tests: an upload whose completion S3 carried out but whose record was lost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from nutrimatch.uploads import jobs
from nutrimatch.uploads.jobs import JobStatus


@contextmanager
def the_uploaded_record_lost(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within: recording a job as uploaded fails (the connection dropped), after S3 completed its object."""
    real_set_status = jobs.set_status

    def failing(conn, vendor_id, job_id, status, error=None):
        if status is JobStatus.UPLOADED:
            raise RuntimeError("the database connection dropped")
        return real_set_status(conn, vendor_id, job_id, status, error)

    with monkeypatch.context() as patched:
        patched.setattr(jobs, "set_status", failing)
        with pytest.raises(RuntimeError):
            yield
