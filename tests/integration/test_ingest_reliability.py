"""Duplicate triggers, chunks dying half way, overlapping jobs and cancels racing steps, the S3 → SQS → starter
path, and the runner's retries."""

import json
import threading
import time

import pytest

from nutrimatch import aws
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.errors import Conflict
from nutrimatch.ingest import jobs, service, source
from nutrimatch.ingest.executions import LocalStarter
from nutrimatch.ingest.finalize import finalize
from nutrimatch.ingest.load import load_chunk
from nutrimatch.ingest.merge import merge_chunk, prepare_merge
from nutrimatch.ingest.pipeline import ASL_PATH, JobCancelled, staging_table
from nutrimatch.ingest.plan import plan
from nutrimatch.ingest.trigger import start_ingestion
from nutrimatch.local.lambdas import invoke, invoke_ref
from nutrimatch.local.pump import EventPump
from nutrimatch.local.stepfunctions import AslRunner, StatesError
from nutrimatch.routes import SCHEDULED
from nutrimatch.settings import get_settings
from tests.integration.ingest_support import create_uploaded_job, ingest, products_of, run_job

HEADER = "sku,name,calories\n"


def _catalog(rows: int) -> bytes:
    return (HEADER + "".join(f"R-{n},Product {n},{n % 500}\n" for n in range(rows))).encode()


def test_a_duplicate_s3_event_starts_one_execution(two_vendors, aws_resources):
    vendor, _ = two_vendors
    uploaded = create_uploaded_job(vendor.id, _catalog(5))
    starter = LocalStarter()
    results = []
    threads = [threading.Thread(target=lambda: results.append(start_ingestion(get_database(), starter, uploaded)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    LocalStarter.runtime().wait(str(uploaded.job_id), 60)
    assert len(products_of(vendor.id)) == 5


def test_s3_notifications_reach_the_pipeline_through_sqs_and_the_pump(two_vendors, aws_resources):
    vendor, _ = two_vendors
    settings = get_settings()
    uploaded = create_uploaded_job(vendor.id, _catalog(7))  # the put_object sends the notification
    pump = EventPump(settings, {settings.ingest_queue: "ingest_starter"}, invoke, wait_seconds=0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and str(uploaded.job_id) not in LocalStarter.runtime().executions:
        pump.drain_once(settings.ingest_queue, "ingest_starter")
    execution = LocalStarter.runtime().wait(str(uploaded.job_id), 60)
    assert execution.status == "SUCCEEDED", execution.error
    assert len(products_of(vendor.id)) == 7


def test_a_chunk_that_dies_mid_copy_is_retried_with_exact_counts(two_vendors, aws_resources, monkeypatch):
    vendor, _ = two_vendors
    monkeypatch.setenv("INGEST_CHUNK_BYTES", "2000")
    get_settings.cache_clear()
    uploaded = create_uploaded_job(vendor.id, _catalog(600))
    real_stream = source.S3Object.stream_range
    failures = []

    def flaky_stream(self, start, end, block_bytes=64):
        # The first load of the second chunk loses its connection after a few blocks.
        for n, block in enumerate(real_stream(self, start, end, block_bytes)):
            if start > 0 and not failures and n == 3:
                failures.append(start)
                raise ConnectionResetError("connection reset by peer")
            yield block

    monkeypatch.setattr(source.S3Object, "stream_range", flaky_stream)
    job = run_job(uploaded)
    assert failures, "the fault was never injected"
    assert job["status"] == "completed", job["error"]
    assert job["counts"]["rows"] == 600 and job["counts"]["inserted"] == 600
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        attempts = conn.execute("SELECT max(load_attempts) AS n, count(*) AS chunks FROM ingestion_chunks "
                                "WHERE job_id = %s", (uploaded.job_id,)).fetchone()
        total = conn.execute("SELECT count(*) AS n FROM products").fetchone()["n"]
    assert attempts["chunks"] > 1
    assert total == 600
    get_settings.cache_clear()


def _planned(uploaded) -> list[dict]:
    return plan(get_settings(), get_database(), aws.client("s3"), uploaded.job_id, uploaded.vendor_id)["chunks"]


def _loaded_and_merged(uploaded, chunks: list[dict]) -> None:
    """The steps between Plan and Finalize, run here one after the other."""
    database, s3 = get_database(), aws.client("s3")
    for chunk in chunks:
        load_chunk(database, s3, uploaded.job_id, uploaded.vendor_id, chunk["chunk_no"])
    prepare_merge(get_settings(), database, uploaded.job_id, uploaded.vendor_id)
    for chunk in chunks:
        merge_chunk(database, uploaded.job_id, uploaded.vendor_id, chunk["chunk_no"])


def _job(vendor_id, job_id) -> dict:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return jobs.fetch(conn, vendor_id, job_id)


def _catalog_version(vendor_id) -> int:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        return conn.execute("SELECT catalog_version FROM vendors WHERE id = %s", (vendor_id,)).fetchone()[
            "catalog_version"]


def test_overlapping_jobs_of_a_vendor_announce_ever_higher_catalog_versions(two_vendors, aws_resources):
    vendor, _ = two_vendors
    assert ingest(vendor.id, _catalog(2))["catalog_version"] == 1
    slow = create_uploaded_job(vendor.id, _catalog(7))
    chunks = _planned(slow)  # while version 1 is live
    assert [ingest(vendor.id, _catalog(n))["catalog_version"] for n in (4, 5)] == [2, 3]
    _loaded_and_merged(slow, chunks)
    counts = finalize(get_database(), aws.client("s3"), slow.job_id, vendor.id)
    assert counts["inserted"] == 2
    assert _job(vendor.id, slow.job_id)["catalog_version"] == 4 == _catalog_version(vendor.id)


def test_a_cancel_accepted_while_plan_starts_stands(two_vendors, aws_resources, monkeypatch):
    vendor, _ = two_vendors
    uploaded = create_uploaded_job(vendor.id, _catalog(2))
    real_require_running = jobs.require_running

    def cancelled_right_after_plan_read_the_job(conn, vendor_id, job_id):
        job = real_require_running(conn, vendor_id, job_id)
        with scoped_transaction(get_database().writer, vendor_id) as other:
            jobs.cancel(other, vendor_id, job_id)
        return job

    monkeypatch.setattr(jobs, "require_running", cancelled_right_after_plan_read_the_job)
    with pytest.raises(JobCancelled):
        _planned(uploaded)
    assert _job(vendor.id, uploaded.job_id)["status"] == "cancelled"


def test_a_cancel_accepted_while_finalize_starts_stands(two_vendors, aws_resources, monkeypatch):
    vendor, _ = two_vendors
    uploaded = create_uploaded_job(vendor.id, _catalog(2))
    _loaded_and_merged(uploaded, _planned(uploaded))
    real_set_phase = jobs.set_phase

    def cancelled_right_before_finalizing(conn, vendor_id, job_id, phase, **fields):
        if phase == "finalizing":
            with scoped_transaction(get_database().writer, vendor_id) as other:
                jobs.cancel(other, vendor_id, job_id)
        real_set_phase(conn, vendor_id, job_id, phase, **fields)

    monkeypatch.setattr(jobs, "set_phase", cancelled_right_before_finalizing)
    with pytest.raises(JobCancelled):
        finalize(get_database(), aws.client("s3"), uploaded.job_id, vendor.id)
    assert _job(vendor.id, uploaded.job_id)["status"] == "cancelled"


def test_a_cancel_that_arrives_while_finalize_runs_waits_for_it_and_is_refused(two_vendors, aws_resources,
                                                                                monkeypatch):
    vendor, _ = two_vendors
    uploaded = create_uploaded_job(vendor.id, _catalog(2))
    _loaded_and_merged(uploaded, _planned(uploaded))
    real_set_phase = jobs.set_phase
    answers = []

    def cancel() -> None:
        try:
            with scoped_transaction(get_database().writer, vendor.id) as conn:
                service.cancel_job(conn, aws.client("s3"), vendor.id, uploaded.job_id)
        except Conflict as refused:
            answers.append(refused.details)

    cancelling = threading.Thread(target=cancel, daemon=True)

    def cancelled_once_finalizing(conn, vendor_id, job_id, phase, **fields):
        real_set_phase(conn, vendor_id, job_id, phase, **fields)
        cancelling.start()
        cancelling.join(0.5)
        assert cancelling.is_alive(), "the cancel did not wait for Finalize"

    monkeypatch.setattr(jobs, "set_phase", cancelled_once_finalizing)
    finalize(get_database(), aws.client("s3"), uploaded.job_id, vendor.id)
    cancelling.join(30)
    assert not cancelling.is_alive(), "the cancel still waits after Finalize committed"
    assert answers == [{"status": "completed"}]
    assert _job(vendor.id, uploaded.job_id)["status"] == "completed"


def test_the_runner_retries_transient_errors_then_catches(monkeypatch):
    calls = []

    def task(resource, payload):
        calls.append(resource)
        if resource == "flaky" and calls.count("flaky") < 3:
            raise ConnectionError("blip")
        if resource == "broken":
            raise ValueError("no good")
        return {"ok": resource}

    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "flaky", "ResultPath": "$.a", "Next": "B",
                  "Retry": [{"ErrorEquals": ["ConnectionError"], "IntervalSeconds": 1, "MaxAttempts": 3}]},
            "B": {"Type": "Task", "Resource": "broken", "Next": "C",
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}]},
            "C": {"Type": "Succeed"},
            "Recover": {"Type": "Pass", "End": True},
        },
    }
    output = AslRunner(definition, task, interval_scale=0.01).run({"x": 1})
    assert calls == ["flaky", "flaky", "flaky", "broken"]
    assert output["a"] == {"ok": "flaky"}
    assert output["error"]["Error"] == "ValueError"
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "no good"


def test_the_runner_gives_up_after_max_attempts():
    definition = {"StartAt": "A", "States": {"A": {
        "Type": "Task", "Resource": "x", "End": True,
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}]}}}
    attempts = []

    def task(resource, payload):
        attempts.append(1)
        raise TimeoutError("slow")

    with pytest.raises(StatesError) as failure:
        AslRunner(definition, task, interval_scale=0.01).run({})
    assert failure.value.error == "TimeoutError"
    assert len(attempts) == 3


def test_the_sweeper_fails_jobs_whose_pipeline_stopped_without_finishing(two_vendors, aws_resources, database):
    vendor, other = two_vendors
    stalled = [create_uploaded_job(v.id, _catalog(3)) for v in (vendor, other)]
    busy = create_uploaded_job(vendor.id, _catalog(3))
    with database.admin() as conn:
        for uploaded in (*stalled, busy):
            conn.execute("UPDATE ingestion_jobs SET status = 'running', phase = 'merging' WHERE id = %s",
                         (uploaded.job_id,))
            conn.execute("INSERT INTO ingestion_chunks (job_id, vendor_id, chunk_no, byte_start, byte_end) "
                         "VALUES (%s, %s, 0, 0, 10)", (uploaded.job_id, uploaded.vendor_id))
            with scoped_transaction(get_database().writer, uploaded.vendor_id) as app:  # as LoadChunk makes them
                app.execute(f"CREATE UNLOGGED TABLE staging.{staging_table(uploaded.job_id, 0)} (c0 text)")
        # Idle for longer than an execution may run: its execution timed out or was stopped.
        conn.execute("UPDATE ingestion_jobs SET updated_at = now() - interval '8 hours' WHERE id = ANY(%s)",
                     ([uploaded.job_id for uploaded in stalled],))

    # As the schedule runs it (nutrimatch.local.scheduler locally, an EventBridge rule in AWS).
    sweeper = SCHEDULED["ingest-sweeper"].handler
    assert invoke_ref(sweeper, {}) == {"failed": 2}
    assert invoke_ref(sweeper, {}) == {"failed": 0}
    for uploaded in stalled:
        with scoped_transaction(get_database().writer, uploaded.vendor_id) as conn:
            job = conn.execute("SELECT status, error FROM ingestion_jobs WHERE id = %s", (uploaded.job_id,)).fetchone()
            events = conn.execute("SELECT event_type, payload FROM outbox_events WHERE vendor_id = %s",
                                  (uploaded.vendor_id,)).fetchall()
        assert job["status"] == "failed"
        assert job["error"]["code"] == "pipeline_stalled"
        assert "upload the file again" in job["error"]["message"]
        assert [(e["event_type"], e["payload"]["error"]) for e in events] == [("job.failed", "pipeline_stalled")]
    with database.admin() as conn:
        left = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'staging'")}
        busy_status = conn.execute("SELECT status FROM ingestion_jobs WHERE id = %s", (busy.job_id,)).fetchone()[0]
    assert left == {staging_table(busy.job_id, 0)}  # the stalled jobs' scratch tables are gone
    assert busy_status == "running"


def test_the_sweeper_waits_longer_than_an_execution_may_run():
    asl = json.loads(ASL_PATH.read_text())
    assert get_settings().ingest_stalled_after_seconds > asl["TimeoutSeconds"]
