"""Where feature snapshots live: in the memory of each warm process, published in S3, built from PostgreSQL.

Matching asks for the snapshot of a vendor at the catalog version it has just read from `vendors`. The
process keeps one snapshot per vendor, least recently used vendors dropped beyond
`matching_snapshot_memory_mb`; a snapshot of another version is never served. When the process has none at
that version it loads the one published in S3 for that version (ingest finalize publishes it: one GET,
under a second at 2M products), and failing that builds it from the database (seconds at 2M products). One
build or load per vendor at a time: concurrent requests for the same vendor wait for it instead of
repeating it.

Ingestion's PublishMatchingSnapshot step calls `publish_snapshot(vendor_id)` once the Finalize transaction
that bumped catalog_version has committed. S3 keys name the format, scoring version, vendor and catalog
version, so a key is never reused for different contents; snapshots hold catalog features only (no PHI).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError

from nutrimatch import aws
from nutrimatch.db import Connection, Database, get_database
from nutrimatch.matching import snapshot
from nutrimatch.matching.scoring import SCORING_VERSION
from nutrimatch.matching.snapshot import FORMAT_VERSION, FeatureSnapshot
from nutrimatch.settings import Settings, get_settings

logger = logging.getLogger("nutrimatch.matching")


def object_key(settings: Settings, vendor_id: UUID, catalog_version: int) -> str:
    return (f"{settings.matching_snapshot_prefix}f{FORMAT_VERSION}-s{SCORING_VERSION}/{vendor_id}/"
            f"{catalog_version}.npz")


@contextmanager
def consistent_read(database: Database, vendor_id: UUID) -> Iterator[Connection]:
    """A read-only REPEATABLE READ transaction scoped to the vendor: one database snapshot for a build."""
    with database.writer.connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SELECT set_config('app.vendor_id', %s, true)", (str(vendor_id),))
        yield conn


def build_from_database(database: Database, vendor_id: UUID) -> FeatureSnapshot:
    with consistent_read(database, vendor_id) as conn:
        return snapshot.build(conn, vendor_id)


class SnapshotStore:
    """The snapshots of one process, per (database, vendor)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, UUID], FeatureSnapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, UUID], threading.Lock] = {}

    def peek(self, database: Database, vendor_id: UUID, catalog_version: int) -> FeatureSnapshot | None:
        """The snapshot at `catalog_version` (or newer) if this process holds it; never loads or builds."""
        return self._cached((database.settings.database_url, vendor_id), catalog_version)

    def _cached(self, key: tuple[str, UUID], catalog_version: int) -> FeatureSnapshot | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or found.catalog_version < catalog_version:
                return None
            self._entries.move_to_end(key)
            return found

    def put(self, database: Database, found: FeatureSnapshot) -> None:
        key = (database.settings.database_url, found.vendor_id)
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current.catalog_version > found.catalog_version:
                return  # a newer version got here first
            self._entries[key] = found
            self._entries.move_to_end(key)
            total = sum(entry.nbytes for entry in self._entries.values())
            while total > self.max_bytes and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                total -= dropped.nbytes

    def current(self, database: Database, vendor_id: UUID, catalog_version: int) -> FeatureSnapshot:
        """The vendor's snapshot at `catalog_version` (or a newer one, should the catalog move meanwhile)."""
        key = (database.settings.database_url, vendor_id)
        found = self._cached(key, catalog_version)
        if found is not None:
            return found
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            found = self._cached(key, catalog_version)
            if found is None:
                found = load_published(database.settings, vendor_id, catalog_version)
                if found is None:
                    found = build_from_database(database, vendor_id)
                    logger.info("matching snapshot built", extra={
                        "vendor_id": str(vendor_id), "catalog_version": found.catalog_version,
                        "products": found.size, "megabytes": round(found.nbytes / 1e6, 1),
                        "seconds": found.build_seconds})
                self.put(database, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def load_published(settings: Settings, vendor_id: UUID, catalog_version: int) -> FeatureSnapshot | None:
    """The snapshot ingestion published for this version, or None (not published, or unreadable)."""
    try:
        body = aws.client("s3", settings).get_object(
            Bucket=settings.upload_bucket, Key=object_key(settings, vendor_id, catalog_version))["Body"]
        return FeatureSnapshot.from_bytes(body.read())
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            logger.warning("matching snapshot not loaded from S3", extra={"error": str(error)})
        return None
    except (BotoCoreError, ValueError) as error:
        logger.warning("matching snapshot not loaded from S3", extra={"error": str(error)})
        return None


def publish(settings: Settings, found: FeatureSnapshot) -> str:
    key = object_key(settings, found.vendor_id, found.catalog_version)
    aws.client("s3", settings).put_object(Bucket=settings.upload_bucket, Key=key, Body=found.to_bytes(),
                                          ContentType="application/octet-stream")
    return key


_store: SnapshotStore | None = None
_store_lock = threading.Lock()


def process_store() -> SnapshotStore:
    """The process-wide store (it survives across warm Lambda invocations)."""
    global _store
    with _store_lock:
        if _store is None:
            _store = SnapshotStore(get_settings().matching_snapshot_memory_mb * 1024 * 1024)
        return _store


def publish_snapshot(vendor_id: UUID, database: Database | None = None) -> FeatureSnapshot:
    """Ingestion's last step: build the vendor's snapshot at its current catalog version and publish it.

    Call it after the transaction that bumped `vendors.catalog_version` has committed (a snapshot published
    for a version that then rolled back could be served for a later, different catalog of the same number).
    Not kept by this process: the publishing step serves no matches. Failure here only costs matching a build
    on first use.
    """
    database = database or get_database()
    found = build_from_database(database, vendor_id)
    publish(database.settings, found)
    return found
