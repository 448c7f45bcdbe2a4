"""Finalize, PublishMatchingSnapshot and MarkFailed: the job's last word, and the sweeper for jobs that got none.

Finalize swaps a bulk load's shadow partitions in (their statistics were gathered leaf by leaf when they were
indexed), retires what a `replace` file no longer lists, refreshes statistics of the vendor's partitions
only and empties the pending list of their full-text index, writes errors.csv to S3, bumps the vendor's
catalog version when anything changed, records `job.completed` in the outbox, and drops the job's staging
tables. PublishMatchingSnapshot then builds matching's snapshot of the new catalog version. MarkFailed records
why a job failed, emits `job.failed` and drops the job's staging tables and shadow; the sweeper does the same
for jobs whose execution ended without either (timed out, stopped).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from nutrimatch.db import Connection, Database, scoped_transaction
from nutrimatch.ingest import bulk, jobs
from nutrimatch.ingest.merge import BULK_LOAD, UPSERT, upsert, written_columns
from nutrimatch.ingest.pipeline import changed_table, duplicates_table, staging_table
from nutrimatch.ingest.validate import Interpretation

ERRORS_CSV_HEADER = "row_number,column,value,reason\n"
SPOOL_BYTES = 8 * 1024 * 1024
# The swap waits this long at most for the vendor's partition (a long read of it); then the step is retried.
SWAP_LOCK_TIMEOUT = "10s"


def errors_key(vendor_id: UUID, job_id: UUID) -> str:
    return f"errors/{vendor_id}/{job_id}/errors.csv"


def _drop_staging(conn: Connection, job_id: UUID, vendor_id: UUID) -> None:
    chunks = conn.execute("SELECT chunk_no FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s",
                          (vendor_id, job_id)).fetchall()
    tables = [staging_table(job_id, c["chunk_no"]) for c in chunks] + [duplicates_table(job_id),
                                                                        changed_table(job_id)]
    for table in tables:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("staging", table)))


def _retire_missing(conn: Connection, job: dict[str, Any]) -> int:
    """Mode `replace`: products the file does not list any more are retired (kept, never served)."""
    chunks = conn.execute("SELECT chunk_no FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s",
                          (job["vendor_id"], job["id"])).fetchall()
    # By external id (a product's id derives from it): a hash anti-join, no id to compute per listed row. Rows
    # rejected while loading never reached staging: their external ids are listed too.
    listed = sql.SQL(" UNION ALL ").join([
        *(sql.SQL("SELECT external_id FROM {}").format(
            sql.Identifier("staging", staging_table(job["id"], c["chunk_no"]))) for c in chunks),
        sql.SQL("SELECT external_id FROM ingestion_errors WHERE vendor_id = %(vendor)s AND job_id = %(job)s "
                "AND external_id IS NOT NULL")])
    result = conn.execute(sql.SQL(
        """UPDATE products p SET status = 'retired', row_hash = NULL, source_hash = NULL,
                  catalog_version = %(version)s, updated_at = now()
            WHERE p.vendor_id = %(vendor)s AND p.status <> 'retired'
              AND NOT EXISTS (SELECT FROM ({}) l WHERE l.external_id = p.external_id)""").format(listed),
        {"vendor": job["vendor_id"], "job": job["id"], "version": jobs.rows_version(job)})
    return result.rowcount


def _write_errors_csv(conn: Connection, s3: Any, job: dict[str, Any]) -> int:
    """Stream the job's row errors to S3 as CSV (spooled to disk when large, never all in memory)."""
    copy_sql = """COPY (SELECT row_number, column_name, value, reason FROM ingestion_errors
                        WHERE vendor_id = %s AND job_id = %s ORDER BY row_number, column_name NULLS FIRST)
                  TO STDOUT WITH (FORMAT csv)"""
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        spool.write(ERRORS_CSV_HEADER.encode())
        with conn.cursor() as cursor, cursor.copy(copy_sql, (job["vendor_id"], job["id"])) as copy:
            for block in copy:
                spool.write(block)
                size += len(block)
        spool.seek(0)
        s3.upload_fileobj(spool, job["s3_bucket"], errors_key(job["vendor_id"], job["id"]),
                          ExtraArgs={"ContentType": "text/csv"})
    return size


def emit(conn: Connection, vendor_id: UUID, event_type: str, payload: dict[str, Any]) -> None:
    """An event for the vendor's webhooks, in the outbox, in the transaction of what it tells."""
    conn.execute("INSERT INTO outbox_events (id, vendor_id, event_type, payload) VALUES (%s, %s, %s, %s)",
                 (uuid.uuid4(), vendor_id, event_type, Jsonb(payload)))


def _swap_in_bulk_load(conn: Connection, job: dict[str, Any], counts: dict[str, int]) -> bool:
    """True when the shadow replaced the vendor's (empty) leaves, analyzed already. Otherwise another job
    filled them meanwhile: the shadow's rows are upserted into them as any file's, and counted that way."""
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(SWAP_LOCK_TIMEOUT)))
    if bulk.swap_in(conn, job):
        return True
    reading = Interpretation.of_plan(job["kind"], job["plan"])
    columns = sql.SQL(", ").join(map(sql.Identifier, written_columns(reading)))
    rows = sql.SQL("SELECT {} FROM {}").format(columns, bulk.shadow(conn, job["id"]))
    merged = conn.execute(upsert(reading, rows), {"vendor": job["vendor_id"]}).fetchone()
    assert merged is not None
    counts["unchanged"] += merged["valid"] - merged["inserted"] - merged["updated"]
    counts["inserted"], counts["updated"] = merged["inserted"], merged["updated"]
    bulk.drop(conn, job)
    return False


def finalize(database: Database, s3: Any, job_id: UUID, vendor_id: UUID) -> dict[str, Any]:
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.require_running(conn, vendor_id, job_id)
        if job["status"] == "completed":  # a retry of a Finalize that did commit
            return dict(job["counts"])
        jobs.set_phase(conn, vendor_id, job_id, "finalizing")
        totals = conn.execute(
            """SELECT coalesce(sum(rows_loaded), 0) AS rows, coalesce(sum(rows_inserted), 0) AS inserted,
                      coalesce(sum(rows_updated), 0) AS updated, coalesce(sum(rows_unchanged), 0) AS unchanged,
                      coalesce(sum(rows_rejected), 0) AS rejected
                 FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s""", (vendor_id, job_id)).fetchone()
        assert totals is not None
        counts = {k: int(v) for k, v in totals.items()}
        # A swapped-in bulk load replaced an empty catalog: nothing to retire, its leaves are analyzed.
        swapped = job["plan"].get("merge") == BULK_LOAD and _swap_in_bulk_load(conn, job, counts)
        retires = job["mode"] == "replace" and job["kind"] == "products" and not swapped
        counts["retired"] = _retire_missing(conn, job) if retires else 0
        changed = counts["inserted"] + counts["updated"] + counts["retired"] > 0
        error_rows = conn.execute("SELECT count(*) AS n FROM ingestion_errors WHERE vendor_id = %s AND job_id = %s",
                                  (vendor_id, job_id)).fetchone()
        counts["error_rows"] = error_rows["n"] if error_rows else 0
        if counts["error_rows"]:
            _write_errors_csv(conn, s3, job)
        version = None
        if changed:
            if not swapped:
                conn.execute("SELECT analyze_vendor_partitions(%s, %s)", (vendor_id, job["kind"]))
            if job["kind"] == "products":
                version = _announce_catalog_version(conn, vendor_id)
        conn.execute(
            """UPDATE ingestion_jobs SET status = 'completed', phase = 'done', counts = %s, finished_at = now(),
                      updated_at = now(), catalog_version = %s
                WHERE vendor_id = %s AND id = %s""", (Jsonb(counts), version, vendor_id, job_id))
        emit(conn, vendor_id, "job.completed", {"job_id": str(job_id), "kind": job["kind"], "mode": job["mode"],
                                                 "counts": counts})
        _drop_staging(conn, job_id, vendor_id)
    return counts


def publish_matching_snapshot(database: Database, job_id: UUID, vendor_id: UUID) -> dict[str, Any]:
    """The PublishMatchingSnapshot step, after Finalize: matching's feature snapshot of the catalog version the
    job made, built once here rather than on the first match. The job is already completed; the state machine
    catches a failure here (matching then builds the snapshot on first use), so it never fails the job."""
    from nutrimatch.matching.snapshot_store import publish_snapshot  # numpy: only this step's Lambda loads it

    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.fetch(conn, vendor_id, job_id)
    if job["kind"] != "products" or job["status"] != "completed" or job["catalog_version"] is None:
        return {"published": False}
    published = publish_snapshot(vendor_id, database)
    return {"published": True, "catalog_version": published.catalog_version, "products": published.size,
            "build_seconds": published.build_seconds}


_MERGED_CHANGES = """SELECT coalesce(sum(rows_inserted + rows_updated), 0) AS n FROM ingestion_chunks
                      WHERE vendor_id = %s AND job_id = %s AND status = 'merged'"""


_NEXT_CATALOG_VERSION = """UPDATE vendors SET catalog_version = catalog_version + 1, updated_at = now()
                             WHERE id = %s RETURNING catalog_version"""


def _announce_catalog_version(conn: Connection, vendor_id: UUID) -> int:
    """A new catalog version of the vendor's products, allocated now: jobs of one vendor may overlap, and the
    vendor's row, locked until the commit, puts their announcements in order, so a version is never reused
    and never goes back."""
    # Before the new version is announced: searches would otherwise read the changes' pending full-text
    # entries one by one (sql/migrations/0014_search_index_pending_list.sql).
    conn.execute("SELECT flush_vendor_search_index(%s)", (vendor_id,))
    announced = conn.execute(_NEXT_CATALOG_VERSION, (vendor_id,)).fetchone()
    assert announced is not None
    return int(announced["catalog_version"])


def announce_merged_rows(conn: Connection, job: dict[str, Any]) -> None:
    """For a products upsert that stopped (cancelled, failed) after some of its chunks merged: those rows are
    live, so the vendor's catalog moves to a new version, as Finalize would have moved it, and the job records
    it. Matching's snapshots are keyed by that version: without this, processes holding the old one would never
    rank the merged rows until another file changed the catalog. In the transaction that stops the job, which
    locks the job's row first: merges lock it too (merge.merge_chunk), so none commits after this has counted
    it."""
    if job["kind"] != "products" or (job["plan"] or {}).get("merge") != UPSERT:
        return
    changed = conn.execute(_MERGED_CHANGES, (job["vendor_id"], job["id"])).fetchone()
    if changed and changed["n"]:
        version = _announce_catalog_version(conn, job["vendor_id"])
        conn.execute("UPDATE ingestion_jobs SET catalog_version = %s WHERE vendor_id = %s AND id = %s",
                     (version, job["vendor_id"], job["id"]))


def mark_failed(database: Database, job_id: UUID, vendor_id: UUID, error: dict[str, Any] | None, *,
                idle_for: timedelta | None = None) -> bool:
    """Fails the job (unless it has ended) and drops its staging tables and shadow; whether it failed it.
    With `idle_for`, only a job still queued or running that nothing has touched for that long."""
    reason = _reason(error)
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.fetch(conn, vendor_id, job_id, lock="update")
        if idle_for is not None and conn.execute(_STILL_STALLED, (vendor_id, job_id, idle_for)).fetchone() is None:
            return False  # it moved on (or ended) since it was found idle
        fails = job["status"] not in jobs.TERMINAL_STATUSES
        if fails:
            conn.execute(
                """UPDATE ingestion_jobs SET status = 'failed', error = %s, finished_at = now(), updated_at = now()
                    WHERE vendor_id = %s AND id = %s""", (Jsonb(reason), vendor_id, job_id))
            emit(conn, vendor_id, "job.failed", {"job_id": str(job_id), "error": reason["code"]})
            announce_merged_rows(conn, job)
        _drop_staging(conn, job_id, vendor_id)
        bulk.drop(conn, job)
    return fails


STALLED = "PipelineStalled"
_STILL_STALLED = """SELECT 1 FROM ingestion_jobs WHERE vendor_id = %s AND id = %s AND status IN ('queued', 'running')
                      AND updated_at < now() - %s"""


def fail_stalled(database: Database, idle: timedelta, limit: int = 100) -> int:
    """The sweeper: fails the jobs of every vendor that no step has touched for `idle` — longer than an
    execution may run, so their execution timed out or was stopped before MarkFailed could run. How many."""
    with scoped_transaction(database.writer, None) as conn:
        stalled = conn.execute("SELECT id, vendor_id FROM stalled_ingestion_jobs(%s, %s)", (idle, limit)).fetchall()
    cause = json.dumps({"errorMessage": "the ingestion stopped without finishing (its run timed out or was "
                                        "stopped); upload the file again"})
    return sum(mark_failed(database, row["id"], row["vendor_id"], {"Error": STALLED, "Cause": cause}, idle_for=idle)
               for row in stalled)


def _reason(error: dict[str, Any] | None) -> dict[str, Any]:
    """What failed, for the vendor: the task's error type and message (Step Functions' Error and Cause)."""
    if not error:
        return {"code": "unknown", "message": "the pipeline failed"}
    name = error.get("Error", "unknown")
    try:
        cause = json.loads(error.get("Cause") or "{}")
        message = cause.get("errorMessage") or error.get("Cause")
    except (json.JSONDecodeError, AttributeError):
        message = error.get("Cause")
    code = {"InvalidInput": "invalid_file", "JobCancelled": "cancelled", STALLED: "pipeline_stalled"}.get(
        name, "pipeline_error")
    return {"code": code, "type": name, "message": (message or "")[:2000]}
