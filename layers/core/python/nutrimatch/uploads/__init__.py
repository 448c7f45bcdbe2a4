"""Resumable uploads of multi-GB catalogs: presigned S3 multipart (multipart.py) and a tus 1.0 server (tus.py).

Both land the file at the job's key under `incoming/`, whose ObjectCreated event starts the ingestion.
"""

from __future__ import annotations

from dataclasses import dataclass

from nutrimatch.db import Database, get_database
from nutrimatch.settings import Settings, get_settings
from nutrimatch.uploads.storage import UploadStore


@dataclass(frozen=True)
class UploadContext:
    """What an upload operation works with: the database, the bucket and the limits."""

    database: Database
    store: UploadStore
    settings: Settings

    @classmethod
    def current(cls) -> UploadContext:
        settings = get_settings()
        return cls(get_database(), UploadStore.from_settings(settings), settings)
