"""Ingestion jobs as the pipeline and the jobs API see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from nutrimatch.db import Connection
from nutrimatch.errors import Conflict, NotFound
from nutrimatch.ingest.pipeline import JobCancelled

TERMINAL_STATUSES = ("completed", "failed", "cancelled")
UNFINISHED_AT_MOST = 0.99

JOB_COLUMNS = """id, vendor_id, kind, mode, status, phase, file_name, size_bytes, content_sha256, s3_bucket, s3_key,
                 upload_method, created_by, created_at, updated_at, uploaded_at, started_at, finished_at, error,
                 counts, mapping, plan, catalog_version"""


class JobProgress(BaseModel):
    phase: str | None
    chunks_total: int
    chunks_loaded: int
    chunks_merged: int
    bytes_total: int
    bytes_loaded: int
    rows_loaded: int
    rows_merged: int
    leaves_total: int = 0
    """Partitions a bulk load indexes after merging (0 for an upsert)."""
    leaves_indexed: int = 0
    fraction_done: float = 0.0
    """Of the whole job, 0 to 1 (1 once completed): what a progress bar shows."""
    elapsed_seconds: float | None
    rows_per_second: float | None
    eta_seconds: float | None


class Job(BaseModel):
    id: UUID
    vendor_id: UUID
    kind: str
    mode: str
    status: str
    phase: str | None
    file_name: str | None
    size_bytes: int | None
    upload_method: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    uploaded_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: dict[str, Any] | None
    counts: dict[str, Any]
    mapping: dict[str, Any] | None
    catalog_version: int | None
    progress: JobProgress | None = None
    errors_csv_url: str | None = None


RowLock = Literal["share", "update"]
_ROW_LOCKS: dict[RowLock | None, str] = {None: "", "share": " FOR SHARE", "update": " FOR UPDATE"}


def fetch(conn: Connection, vendor_id: UUID, job_id: UUID, *, lock: RowLock | None = None) -> dict[str, Any]:
    """The job's row; `lock` ("share" or "update") holds it locked that way until the transaction ends."""
    row = conn.execute(
        f"SELECT {JOB_COLUMNS} FROM ingestion_jobs WHERE vendor_id = %s AND id = %s{_ROW_LOCKS[lock]}",
        (vendor_id, job_id)).fetchone()
    if row is None:
        raise NotFound("ingestion job not found")
    return row


def require_running(conn: Connection, vendor_id: UUID, job_id: UUID, *, share: bool = False) -> dict[str, Any]:
    """The job, unless it was cancelled. `share` keeps its row from being stopped (cancelled, failed: both lock
    it for update) until this transaction ends; steps that share it do not wait for one another."""
    job = fetch(conn, vendor_id, job_id, lock="share" if share else None)
    if job["status"] == "cancelled":
        raise JobCancelled(str(job_id))
    return job


def rows_version(job: dict[str, Any]) -> int:
    """What the rows a job changes are stamped with (products.catalog_version): its plan's `rows_version`, or,
    for a job planned before plans had one, the version it was given at planning on its own row."""
    return int(job["plan"].get("rows_version", job["catalog_version"]))


_START = """UPDATE ingestion_jobs SET status = 'running', phase = 'planning', updated_at = now(),
                   started_at = coalesce(started_at, now())
             WHERE vendor_id = %s AND id = %s AND status <> 'cancelled'"""


def start(conn: Connection, vendor_id: UUID, job_id: UUID) -> None:
    """Marks the job running (the Plan step), unless it was cancelled: see set_phase."""
    _unless_cancelled(conn.execute(_START, (vendor_id, job_id)).rowcount, job_id)


def lock_chunk(conn: Connection, vendor_id: UUID, job_id: UUID, chunk_no: int) -> dict[str, Any]:
    """A chunk's row, locked for the step working on it (a retried step waits for a stuck first attempt)."""
    chunk = conn.execute(
        "SELECT * FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s AND chunk_no = %s FOR UPDATE",
        (vendor_id, job_id, chunk_no)).fetchone()
    if chunk is None:
        raise NotFound(f"chunk {chunk_no} of job {job_id} was never planned")
    return chunk


def set_phase(conn: Connection, vendor_id: UUID, job_id: UUID, phase: str, **fields: Any) -> None:
    """Records the step under way, unless the job was cancelled (JobCancelled). A cancel in flight is waited for
    and then seen, and the job's row stays locked until the step's transaction ends, so a cancel cannot land
    between this check and what the step writes after it (a status 'completed', say)."""
    assignments = ", ".join(f"{name} = %({name})s" for name in fields)
    updated = conn.execute(
        f"UPDATE ingestion_jobs SET phase = %(phase)s, updated_at = now(){', ' if fields else ''}{assignments} "
        "WHERE vendor_id = %(vendor)s AND id = %(job)s AND status <> 'cancelled'",
        {"phase": phase, "vendor": vendor_id, "job": job_id, **fields})
    _unless_cancelled(updated.rowcount, job_id)


def _unless_cancelled(rows_updated: int, job_id: UUID) -> None:
    # The steps read the job before they write it: a job that matched nothing was cancelled in between.
    if not rows_updated:
        raise JobCancelled(str(job_id))


def progress(conn: Connection, job: dict[str, Any]) -> JobProgress:
    row = conn.execute(
        """SELECT count(*) AS chunks_total,
                  count(*) FILTER (WHERE status IN ('loaded', 'merged')) AS chunks_loaded,
                  count(*) FILTER (WHERE status = 'merged') AS chunks_merged,
                  coalesce(sum(byte_end - byte_start), 0) AS bytes_total,
                  coalesce(sum(byte_end - byte_start) FILTER (WHERE status IN ('loaded', 'merged')), 0) AS bytes_loaded,
                  coalesce(sum(rows_loaded), 0) AS rows_loaded,
                  coalesce(sum(rows_loaded) FILTER (WHERE status = 'merged'), 0) AS rows_merged,
                  max(loaded_at) AS last_loaded_at, max(merged_at) AS last_merged_at
             FROM ingestion_chunks WHERE vendor_id = %s AND job_id = %s""",
        (job["vendor_id"], job["id"])).fetchone()
    assert row is not None
    last_loaded, last_merged = row.pop("last_loaded_at"), row.pop("last_merged_at")
    row = {name: int(value) for name, value in row.items()}  # sums arrive as numeric
    plan = job["plan"] or {}
    row["leaves_total"] = len(plan.get("bulk_leaves") or ())
    row["leaves_indexed"] = len(plan.get("indexed_leaves") or ())
    started = job["started_at"]
    now = job["finished_at"] or datetime.now(UTC)
    elapsed = (now - started).total_seconds() if started else None
    stages = job_stages(row, started, last_loaded, last_merged)
    # Finalizing (retiring, statistics, errors.csv) is not a stage of its own: a job is not all done before it ends.
    done_fraction = 1.0 if job["status"] == "completed" else min(
        sum(stage.weight * stage.done for stage in stages), UNFINISHED_AT_MOST)
    rate = row["rows_merged"] / elapsed if elapsed and row["rows_merged"] else None
    eta = None if job["status"] in TERMINAL_STATUSES else seconds_left(stages, now)
    return JobProgress(phase=job["phase"], fraction_done=round(done_fraction, 3),
                       elapsed_seconds=round(elapsed, 2) if elapsed else None,
                       rows_per_second=round(rate, 1) if rate else None,
                       eta_seconds=None if eta is None else round(eta, 1), **row)


@dataclass(frozen=True)
class Stage:
    """One stage of a job as progress sees it: its share of the whole job, how much of it is done, since when."""

    weight: float
    done: float
    started_at: datetime | None


def job_stages(row: dict[str, Any], started: datetime | None, last_loaded: datetime | None,
               last_merged: datetime | None) -> list[Stage]:
    """Loading, merging and (for a bulk load) indexing, each starting when the one before it ended. Weights, as
    measured: loading is about a tenth of a job that changes the catalog (a bulk load of 2M rows: six tenths
    validating and writing, three tenths indexing; an upsert of 200k rows into a populated catalog: nine tenths
    validating and merging). Loading weighs the same in both, as whether a job bulk-loads is decided only once
    its rows are loaded: the bar does not go back when it is. A re-ingest of unchanged rows merges faster than
    that, and its time left follows the measured pace as soon as merging is under way."""
    def share(done: int, total: int) -> float:
        return done / total if total else 0.0

    loaded = share(row["bytes_loaded"], row["bytes_total"])
    merged = share(row["chunks_merged"], row["chunks_total"])
    merging_since = last_loaded if row["chunks_total"] and loaded == 1 else None
    if not row["leaves_total"]:
        return [Stage(0.1, loaded, started), Stage(0.9, merged, merging_since)]
    indexing_since = last_merged if merged == 1 else None
    return [Stage(0.1, loaded, started), Stage(0.6, merged, merging_since),
            Stage(0.3, share(row["leaves_indexed"], row["leaves_total"]), indexing_since)]


def seconds_left(stages: list[Stage], now: datetime) -> float | None:
    """The current stage at its own measured pace, the stages after it in proportion to their weights; None
    before any stage has measured a pace, or once every stage is done.

    A job's stages do not keep one pace: merging into a populated catalog takes many times longer than loading,
    so a pace measured while loading would promise too early an end for the rest."""
    current = next((index for index, stage in enumerate(stages) if stage.done < 1), None)
    if current is None:
        return None
    stage = stages[current]
    if stage.started_at is None:
        return None
    spent = max((now - stage.started_at).total_seconds(), 0.0)
    if stage.done > 0:
        whole = spent / stage.done
    else:  # nothing measured yet: as long as the stage before it took, in proportion to their weights
        before = stages[current - 1] if current else None
        if before is None or before.started_at is None:
            return None
        whole = (stage.started_at - before.started_at).total_seconds() * stage.weight / before.weight
        if whole <= spent:  # already longer than that: nothing to go by until part of it is done
            return None
    later = sum(following.weight for following in stages[current + 1:])
    return max(whole - spent, 0.0) + whole * later / stage.weight


def list_jobs(conn: Connection, vendor_id: UUID, *, status: str | None, before: datetime | None,
              limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = conn.execute(
        f"""SELECT {JOB_COLUMNS} FROM ingestion_jobs
             WHERE vendor_id = %(vendor)s AND (%(status)s::text IS NULL OR status = %(status)s)
               AND (%(before)s::timestamptz IS NULL OR created_at < %(before)s)
             ORDER BY created_at DESC, id DESC LIMIT %(limit)s""",
        {"vendor": vendor_id, "status": status, "before": before, "limit": limit}).fetchall()
    return rows


def cancel(conn: Connection, vendor_id: UUID, job_id: UUID) -> dict[str, Any]:
    job = fetch(conn, vendor_id, job_id, lock="update")
    if job["status"] in TERMINAL_STATUSES:
        raise Conflict(f"the job is already {job['status']}", details={"status": job["status"]})
    conn.execute("UPDATE ingestion_jobs SET status = 'cancelled', finished_at = now(), updated_at = now() "
                 "WHERE vendor_id = %s AND id = %s", (vendor_id, job_id))
    return fetch(conn, vendor_id, job_id)
