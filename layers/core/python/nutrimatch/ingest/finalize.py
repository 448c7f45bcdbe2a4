"""Finalize and MarkFailed: the job's last word.

Finalize retires what a `replace` file no longer lists, refreshes statistics of the vendor's partitions only,
writes errors.csv to S3, bumps the vendor's catalog version when anything changed, records `job.completed` in
the outbox, and drops the job's staging tables. MarkFailed records why a job failed and emits `job.failed`.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from nutrimatch.db import Connection, Database, scoped_transaction
from nutrimatch.ingest import jobs
from nutrimatch.ingest.pipeline import duplicates_table, staging_table

ERRORS_CSV_HEADER = "row_number,column,value,reason\n"
SPOOL_BYTES = 8 * 1024 * 1024


def errors_key(vendor_id: UUID, job_id: UUID) -> str:
    return f"errors/{vendor_id}/{job_id}/errors.csv"


def _drop_staging(conn: Connection, job_id: UUID, vendor_id: UUID) -> None:
    chunks = conn.execute("SELECT chunk_no FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s",
                          (vendor_id, job_id)).fetchall()
    tables = [staging_table(job_id, c["chunk_no"]) for c in chunks] + [duplicates_table(job_id)]
    for table in tables:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("staging", table)))


def _retire_missing(conn: Connection, job: dict[str, Any]) -> int:
    """Mode `replace`: products the file does not list any more are retired (kept, never served)."""
    chunks = conn.execute("SELECT chunk_no FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s",
                          (job["vendor_id"], job["id"])).fetchall()
    key = sql.Identifier(f"c{job['plan']['columns']['external_id']['index']}")
    listed = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT entity_uuid(%(vendor)s, btrim({})) AS id FROM {} WHERE nullif(btrim({}), '') IS NOT NULL")
        .format(key, sql.Identifier("staging", staging_table(job["id"], c["chunk_no"])), key) for c in chunks)
    conn.execute(sql.SQL("CREATE TEMP TABLE listed ON COMMIT DROP AS {}").format(listed), {"vendor": job["vendor_id"]})
    conn.execute("CREATE INDEX ON listed (id)")
    result = conn.execute(
        """UPDATE products p SET status = 'retired', row_hash = NULL, catalog_version = %(version)s,
                  updated_at = now()
            WHERE p.vendor_id = %(vendor)s AND p.status <> 'retired'
              AND NOT EXISTS (SELECT 1 FROM listed l WHERE l.id = p.id)""",
        {"vendor": job["vendor_id"], "version": job["catalog_version"]})
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


def _emit(conn: Connection, vendor_id: UUID, event_type: str, payload: dict[str, Any]) -> None:
    conn.execute("INSERT INTO outbox_events (id, vendor_id, event_type, payload) VALUES (%s, %s, %s, %s)",
                 (uuid.uuid4(), vendor_id, event_type, Jsonb(payload)))


def finalize(database: Database, s3: Any, job_id: UUID, vendor_id: UUID) -> dict[str, Any]:
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.require_running(conn, vendor_id, job_id)
        jobs.set_phase(conn, vendor_id, job_id, "finalizing")
        totals = conn.execute(
            """SELECT coalesce(sum(rows_loaded), 0) AS rows, coalesce(sum(rows_inserted), 0) AS inserted,
                      coalesce(sum(rows_updated), 0) AS updated, coalesce(sum(rows_unchanged), 0) AS unchanged,
                      coalesce(sum(rows_rejected), 0) AS rejected
                 FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s""", (vendor_id, job_id)).fetchone()
        assert totals is not None
        counts = {k: int(v) for k, v in totals.items()}
        counts["retired"] = _retire_missing(conn, job) if job["mode"] == "replace" and job["kind"] == "products" else 0
        changed = counts["inserted"] + counts["updated"] + counts["retired"] > 0
        error_rows = conn.execute("SELECT count(*) AS n FROM ingestion_errors WHERE vendor_id = %s AND job_id = %s",
                                  (vendor_id, job_id)).fetchone()
        counts["error_rows"] = error_rows["n"] if error_rows else 0
        if counts["error_rows"]:
            _write_errors_csv(conn, s3, job)
        if changed:
            conn.execute("SELECT analyze_vendor_partitions(%s, %s)", (vendor_id, job["kind"]))
            if job["kind"] == "products":
                conn.execute("UPDATE vendors SET catalog_version = %s, updated_at = now() WHERE id = %s",
                             (job["catalog_version"], vendor_id))
        conn.execute(
            """UPDATE ingestion_jobs SET status = 'completed', phase = 'done', counts = %s, finished_at = now(),
                      updated_at = now(), catalog_version = CASE WHEN %s THEN catalog_version END
                WHERE vendor_id = %s AND id = %s""", (Jsonb(counts), changed, vendor_id, job_id))
        _emit(conn, vendor_id, "job.completed", {"job_id": str(job_id), "kind": job["kind"], "mode": job["mode"],
                                                 "counts": counts})
        _drop_staging(conn, job_id, vendor_id)
    return counts


def mark_failed(database: Database, job_id: UUID, vendor_id: UUID, error: dict[str, Any] | None) -> None:
    reason = _reason(error)
    with scoped_transaction(database.writer, vendor_id) as conn:
        job = jobs.fetch(conn, vendor_id, job_id, lock=True)
        if job["status"] not in jobs.TERMINAL_STATUSES:
            conn.execute(
                """UPDATE ingestion_jobs SET status = 'failed', error = %s, finished_at = now(), updated_at = now()
                    WHERE vendor_id = %s AND id = %s""", (Jsonb(reason), vendor_id, job_id))
            _emit(conn, vendor_id, "job.failed", {"job_id": str(job_id), "error": reason["code"]})
        _drop_staging(conn, job_id, vendor_id)


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
    code = {"InvalidInput": "invalid_file", "JobCancelled": "cancelled"}.get(name, "pipeline_error")
    return {"code": code, "type": name, "message": (message or "")[:2000]}
