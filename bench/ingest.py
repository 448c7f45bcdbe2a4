"""Ingestion benchmark: the whole pipeline against a plain COPY of the same file, in the same run.

(a) raw COPY of the CSV into an UNLOGGED table with the same columns — the floor;
(b) first load: upload done → job completed: rows live, searchable, analyzed (the real state machine, run
    locally; its last step, publishing matching's snapshot of the new catalog, follows and is timed apart);
(c) re-ingest of the unchanged file; (d) a first load of a file with 1 % bad rows; (e) a first load of a file a
tenth the size, to show the workers' memory does not grow with the file.
Prints each time, the ratios (b)/(a) and (c)/(a), and the peak RSS of the process running the chunk workers (a
fresh process per job, as a fresh Lambda; measured until the job completed).

    .venv/bin/python bench/ingest.py --rows 2000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import DATA_DIR, PeakRss, embedded_stack


def generated_csv(rows: int, bad_fraction: float) -> Path:
    from nutrimatch.demo.catalog import write_products_csv

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"catalog-{rows}-{bad_fraction}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_products_csv(path.with_suffix(".tmp"), rows, bad_fraction=bad_fraction)
        path.with_suffix(".tmp").rename(path)
        print(f"generated {path.name} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s")
    return path


def _data_directories() -> list[str]:
    """The data directories of the configured PostgreSQL servers (primary and replica)."""
    import psycopg

    from nutrimatch.settings import get_settings

    settings = get_settings()
    urls = [settings.database_admin_url]
    if settings.database_replica_url:
        urls.append(settings.database_replica_url.replace("nutrimatch_app@", "postgres@"))
    directories = []
    for url in urls:
        with contextlib.suppress(psycopg.Error), psycopg.connect(url) as conn:
            directories.append(conn.execute("SHOW data_directory").fetchone()[0])
    return directories


def stack_cpu_seconds() -> float:
    """CPU seconds used so far by the local servers: this run's children (the embedded stack: moto, Redis; the
    pipeline's worker process) and the PostgreSQL servers (pg_ctl detaches them) with their backends, finished
    ones included."""
    processes = psutil.Process().children(recursive=True)
    directories = _data_directories()
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or ())
        if any(f"-D {directory}" in command for directory in directories):
            processes += [process, *process.children()]
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


class CpuUse:
    """CPU seconds of the stack and of this process over a block: the work done, whatever else the machine runs."""

    def __enter__(self) -> CpuUse:
        self._stack, self._own = stack_cpu_seconds(), sum(psutil.Process().cpu_times()[:2])
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack = stack_cpu_seconds() - self._stack
        self.own = sum(psutil.Process().cpu_times()[:2]) - self._own

    def __str__(self) -> str:
        return (f"CPU seconds: servers {self.stack:.1f} (PostgreSQL primary and replica, moto, the pipeline's "
                f"worker process), benchmark process {self.own:.1f}")


def raw_copy_seconds(path: Path) -> float:
    import psycopg

    from nutrimatch.demo.catalog import PRODUCT_COLUMNS
    from nutrimatch.settings import get_settings

    numeric = {"price", "serving_size_g", "calories", "protein_g", "carbs_g", "fat_g", "saturated_fat_g",
               "fiber_g", "sugar_g", "added_sugar_g", "sodium_mg", "potassium_mg"}
    columns = ", ".join(f"{c} {'numeric' if c in numeric else 'text'}" for c in PRODUCT_COLUMNS)
    with psycopg.connect(get_settings().database_admin_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_copy")
        conn.execute(f"CREATE UNLOGGED TABLE bench_raw_copy ({columns})")
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(
                "COPY bench_raw_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, path.open("rb") as file:
            while block := file.read(1 << 20):
                copy.write(block)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw_copy")
    return elapsed


def _finished(vendor_id: uuid.UUID, job_id: uuid.UUID) -> dict:
    """The job once it has ended (completed, failed or cancelled), polled every 50 ms."""
    from nutrimatch.db import get_database, scoped_transaction
    from nutrimatch.ingest.jobs import TERMINAL_STATUSES, fetch

    while True:
        with scoped_transaction(get_database().writer, vendor_id) as conn:
            job = fetch(conn, vendor_id, job_id)
        if job["status"] in TERMINAL_STATUSES:
            return job
        time.sleep(0.05)


def _adopt_environment(environment: dict[str, str]) -> None:
    os.environ.update(environment)


def run_pipeline(vendor_id: uuid.UUID, source_key: str, size: int) -> tuple[float, dict, float]:
    """One job in a fresh process, as a fresh Lambda would run it: (seconds from the start to the job completed,
    its counts, the peak RSS of that process until then)."""
    with CpuUse() as cpu, multiprocessing.get_context("spawn").Pool(
            1, initializer=_adopt_environment, initargs=(dict(os.environ),)) as pool:
        elapsed, counts, peak_rss, steps, execution_seconds = pool.apply(_run_job, (vendor_id, source_key, size))
    print(f"    task seconds (summed over parallel chunks): {steps}")
    print(f"    whole execution, matching snapshot included: {execution_seconds:.1f} s; peak RSS until the job "
          f"completed {peak_rss} MiB; {cpu}")
    return elapsed, counts, peak_rss


def _run_job(vendor_id: uuid.UUID, source_key: str, size: int) -> tuple[float, dict, float, dict, float]:
    from nutrimatch import aws
    from nutrimatch.db import get_database, scoped_transaction
    from nutrimatch.ingest.executions import LocalStarter
    from nutrimatch.ingest.trigger import UploadedObject, start_ingestion
    from nutrimatch.settings import get_settings

    settings = get_settings()
    job_id = uuid.uuid4()
    # Each job owns its object (as uploads do); outside incoming/, so no notification races the benchmark.
    key = f"bench/{vendor_id}/{job_id}.csv"
    aws.client("s3").copy_object(Bucket=settings.upload_bucket, Key=key,
                                 CopySource={"Bucket": settings.upload_bucket, "Key": source_key})
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        conn.execute(
            """INSERT INTO ingestion_jobs (id, vendor_id, kind, mode, status, file_name, size_bytes, s3_bucket,
                                           s3_key, upload_method, created_by)
               VALUES (%s, %s, 'products', 'upsert', 'uploaded', 'bench.csv', %s, %s, %s, 'multipart', 'bench')""",
            (job_id, vendor_id, size, settings.upload_bucket, key))
    uploaded = UploadedObject(settings.upload_bucket, key, vendor_id, job_id)
    with PeakRss() as rss:
        started = time.perf_counter()
        start_ingestion(get_database(), LocalStarter(), uploaded)
        job = _finished(vendor_id, job_id)
        elapsed = time.perf_counter() - started
    # After the job completed, the execution publishes matching's snapshot (not part of the load's time).
    execution = LocalStarter.runtime().wait(str(job_id))
    execution_seconds = time.perf_counter() - started
    if job["status"] != "completed":
        raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']} ({execution.error})")
    steps = {resource.rsplit(".", 1)[-1]: round(seconds, 1) for resource, seconds in execution.task_seconds.items()}
    return elapsed, job["counts"], rss.peak_mib, steps, execution_seconds


def upload(path: Path, vendor_id: uuid.UUID) -> str:
    from nutrimatch import aws
    from nutrimatch.settings import get_settings

    # An object outside incoming/ notifies nobody: the benchmark starts each run itself.
    key = f"bench/{vendor_id}/{path.name}"
    aws.client("s3").upload_file(str(path), get_settings().upload_bucket, key)
    return key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    clean = generated_csv(args.rows, 0.0)
    dirty = generated_csv(args.rows, 0.01)
    small_rows = max(args.rows // 10, 10_000)
    small = generated_csv(small_rows, 0.0)
    with embedded_stack():
        from nutrimatch.db import get_database
        from nutrimatch.tenancy import vendors
        from nutrimatch.tenancy.vendors import NewVendor

        database = get_database()
        first_vendor = vendors.onboard(database, NewVendor(slug=f"bench-{uuid.uuid4().hex[:6]}", name="Bench"))
        dirty_vendor = vendors.onboard(database, NewVendor(slug=f"bench-{uuid.uuid4().hex[:6]}", name="Bench 1%"))
        small_vendor = vendors.onboard(database, NewVendor(slug=f"bench-{uuid.uuid4().hex[:6]}", name="Bench small"))
        clean_key, dirty_key = upload(clean, first_vendor.id), upload(dirty, dirty_vendor.id)
        small_key = upload(small, small_vendor.id)

        with CpuUse() as cpu:
            raw = raw_copy_seconds(clean)
        print(f"(a) raw COPY into an unlogged table   {raw:7.1f} s")
        print(f"    {cpu}")
        first, first_counts, first_rss = run_pipeline(first_vendor.id, clean_key, clean.stat().st_size)
        print(f"(b) first load, upload → live         {first:7.1f} s   x{first / raw:.2f}   {first_counts}")
        again, again_counts, again_rss = run_pipeline(first_vendor.id, clean_key, clean.stat().st_size)
        print(f"(c) re-ingest of the unchanged file    {again:7.1f} s   x{again / raw:.2f}   {again_counts}")
        bad, bad_counts, bad_rss = run_pipeline(dirty_vendor.id, dirty_key, dirty.stat().st_size)
        print(f"(d) first load with 1 % bad rows       {bad:7.1f} s   x{bad / raw:.2f}   {bad_counts}")
        small_first, _, small_rss = run_pipeline(small_vendor.id, small_key, small.stat().st_size)
        print(f"(e) first load of {small_rows:,} rows        {small_first:7.1f} s")
        peak_rss = max(first_rss, again_rss, bad_rss)
        print(f"peak RSS of the process running the chunk workers, until each job completed: {peak_rss} MiB at "
              f"{args.rows:,} rows, {small_rss} MiB at {small_rows:,} rows")
    result = {
        "rows": args.rows, "file_mib": round(clean.stat().st_size / 2**20, 1),
        "raw_copy_s": round(raw, 2), "first_load_s": round(first, 2), "reingest_s": round(again, 2),
        "bad_rows_s": round(bad, 2), "first_load_ratio": round(first / raw, 2),
        "reingest_ratio": round(again / raw, 2), "rejected_rows": bad_counts["rejected"],
        "worker_peak_rss_mib": peak_rss, "rows_small": small_rows, "worker_peak_rss_small_mib": small_rss,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
