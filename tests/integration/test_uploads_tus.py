"""The tus core against PostgreSQL and moto: locking, crash safety, expiry, and what reaches the ingest queue."""

import base64
import hashlib
import json
import threading
import time
from urllib.parse import unquote_plus

import pytest

from nutrimatch import aws
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.errors import Conflict, Gone, NotFound
from nutrimatch.ingest import jobs as ingest_jobs
from nutrimatch.uploads import UploadContext, tus
from nutrimatch.uploads.storage import tail_key
from tests.integration.upload_support import the_uploaded_record_lost

MIB = 1024**2
ROW = b"sku-0000001,Rolled oats,Acme,2.50,380\n"


def csv_of(size: int) -> bytes:
    return (b"external_id,name,brand,price,calories\n" + ROW * (size // len(ROW) + 1))[:size]


def new_upload(ctx, vendor, length):
    metadata = f"kind {base64.b64encode(b'products').decode()},filename {base64.b64encode(b'c.csv').decode()}"
    return tus.create(ctx, vendor.id, "tester", {"tus-resumable": "1.0.0", "upload-length": str(length),
                                                 "upload-metadata": metadata}, b"")


def send(ctx, vendor, upload, offset, body):
    headers = {"tus-resumable": "1.0.0", "content-type": tus.OFFSET_CONTENT_TYPE, "upload-offset": str(offset)}
    return tus.append(ctx, vendor.id, upload.id, headers, body)


def job_of(ctx, vendor, upload):
    with scoped_transaction(ctx.database.writer, vendor.id) as conn:
        return conn.execute("SELECT * FROM ingestion_jobs WHERE id = %s", (upload.job_id,)).fetchone()


def scratch_objects(ctx):
    return ctx.store.s3.list_objects_v2(Bucket=ctx.store.bucket, Prefix="tus-scratch/").get("KeyCount", 0)


def completed_but_unrecorded(ctx, vendor, monkeypatch):
    """An upload (and its content) whose final PATCH completed the object in S3, then failed before PostgreSQL
    recorded it."""
    content = csv_of(3000)
    upload = send(ctx, vendor, new_upload(ctx, vendor, len(content)), 0, content[:1000])
    with the_uploaded_record_lost(monkeypatch):
        send(ctx, vendor, upload, 1000, content[1000:])
    return upload, content


def test_head_waits_for_a_patch_in_flight_and_a_second_patch_is_refused(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    upload = new_upload(ctx, vendor, 1000)
    writing, done = threading.Event(), threading.Event()

    def patch_in_flight():
        with scoped_transaction(get_database().writer, vendor.id) as conn:
            conn.execute("SELECT 1 FROM tus_uploads WHERE id = %s FOR UPDATE", (upload.id,))
            conn.execute("UPDATE tus_uploads SET upload_offset = 400 WHERE id = %s", (upload.id,))
            writing.set()
            done.wait(5)
            time.sleep(0.3)

    holder = threading.Thread(target=patch_in_flight)
    holder.start()
    writing.wait(5)
    with pytest.raises(tus.UploadLocked):
        send(ctx, vendor, upload, 0, b"a,b\n")
    started = time.monotonic()
    done.set()
    seen = tus.status(ctx, vendor.id, upload.id, {"tus-resumable": "1.0.0"})
    holder.join()
    assert seen.upload_offset == 400
    assert time.monotonic() - started >= 0.25


def test_a_patch_that_crashed_after_writing_to_s3_is_retried_cleanly(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    content = csv_of(13 * MIB)
    upload = new_upload(ctx, vendor, len(content))
    upload = send(ctx, vendor, upload, 0, content[: 3 * MIB])  # a tail
    assert upload.tail_size == 3 * MIB
    # A PATCH of the next 4 MiB died after writing part 1 and its would-be tail, before recording them.
    job = job_of(ctx, vendor, upload)
    ctx.store.upload_part(job["s3_key"], job["multipart_upload_id"], 1, b"garbage" * MIB)
    ctx.store.put(tail_key(vendor.id, upload.id, 7 * MIB), b"stray tail")
    tus._recent_tails.tails.clear()  # the retry reaches another instance: the tail comes from S3
    upload = send(ctx, vendor, upload, 3 * MIB, content[3 * MIB: 7 * MIB])
    assert (upload.upload_offset, len(upload.parts), upload.tail_size) == (7 * MIB, 1, 0)
    for offset in (7 * MIB, 11 * MIB):
        upload = send(ctx, vendor, upload, offset, content[offset: offset + tus.MAX_CHUNK_BYTES])
    assert upload.finished
    assert hashlib.sha256(ctx.store.read(job["s3_key"])).digest() == hashlib.sha256(content).digest()


def test_expiry_removes_only_unfinished_uploads_past_their_time_for_every_vendor(two_vendors, aws_resources,
                                                                                   database):
    vendor_a, vendor_b = two_vendors
    ctx = UploadContext.current()
    expired = [new_upload(ctx, vendor_a, 500), new_upload(ctx, vendor_b, 500)]
    alive = new_upload(ctx, vendor_a, 500)
    finished = send(ctx, vendor_b, new_upload(ctx, vendor_b, len(ROW)), 0, ROW)
    with database.admin() as conn:
        conn.execute("UPDATE tus_uploads SET expires_at = now() - interval '1 second' WHERE id = ANY(%s)",
                     ([u.id for u in [*expired, finished]],))
    assert tus.expire(ctx) == 2
    for vendor, upload in zip((vendor_a, vendor_b), expired, strict=True):
        with pytest.raises(NotFound):
            tus.status(ctx, vendor.id, upload.id, {"tus-resumable": "1.0.0"})
        with scoped_transaction(ctx.database.writer, vendor.id) as conn:
            job = conn.execute("SELECT status, error FROM ingestion_jobs WHERE id = %s", (upload.job_id,)).fetchone()
        assert (job["status"], job["error"]["code"]) == ("cancelled", "upload_expired")
    assert tus.status(ctx, vendor_a.id, alive.id, {"tus-resumable": "1.0.0"}).upload_offset == 0
    assert tus.status(ctx, vendor_b.id, finished.id, {"tus-resumable": "1.0.0"}).finished
    assert tus.expire(ctx) == 0


def test_only_the_finished_object_reaches_the_ingest_queue(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    content = csv_of(7 * MIB)
    upload = new_upload(ctx, vendor, len(content))
    for offset in range(0, len(content), 2 * MIB):  # tails at 2, 4 and 6 MiB before the parts
        upload = send(ctx, vendor, upload, offset, content[offset: offset + 2 * MIB])
    key = job_of(ctx, vendor, upload)["s3_key"]
    sqs = aws.client("sqs", aws_resources)
    queue = aws.queue_url(aws_resources.ingest_queue, aws_resources)
    keys = set()
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            keys.update(unquote_plus(r["s3"]["object"]["key"]) for r in json.loads(message["Body"]).get("Records", []))
    assert keys == {key}


def test_concurrent_patches_are_serialized(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    chunk = csv_of(tus.MAX_CHUNK_BYTES)  # written to S3 (as the tail), which takes a while
    upload = new_upload(ctx, vendor, 3 * len(chunk))
    outcomes: list[str] = []

    def racer():
        try:
            send(ctx, vendor, upload, 0, chunk)
            outcomes.append("written")
        except tus.UploadLocked:
            outcomes.append("locked")
        except Conflict:
            outcomes.append("conflict")  # came after the winner: the offset moved on

    racers = [threading.Thread(target=racer) for _ in range(4)]
    for thread in racers:
        thread.start()
    for thread in racers:
        thread.join()
    assert outcomes.count("written") == 1
    assert len(outcomes) == 4
    settled = tus.status(ctx, vendor.id, upload.id, {"tus-resumable": "1.0.0"})
    assert (settled.upload_offset, settled.tail_size) == (len(chunk), len(chunk))


def test_a_patch_to_an_upload_whose_job_was_cancelled_is_gone(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    content = csv_of(2000)
    upload = send(ctx, vendor, new_upload(ctx, vendor, len(content)), 0, content[:1000])
    with scoped_transaction(ctx.database.writer, vendor.id) as conn:
        ingest_jobs.cancel(conn, vendor.id, upload.job_id)
    with pytest.raises(Gone):
        send(ctx, vendor, upload, 1000, content[1000:])
    assert job_of(ctx, vendor, upload)["status"] == "cancelled"
    assert ctx.store.s3.list_objects_v2(Bucket=ctx.store.bucket, Prefix="incoming/").get("KeyCount", 0) == 0


@pytest.mark.parametrize(("status_meanwhile", "status_after"), [("uploading", "uploaded"), ("queued", "queued")])
def test_a_final_patch_retried_after_its_record_was_lost_finishes_the_upload(two_vendors, aws_resources, database,
                                                                             monkeypatch, status_meanwhile,
                                                                             status_after):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    upload, content = completed_but_unrecorded(ctx, vendor, monkeypatch)
    with database.admin() as conn:  # the object's event may start the pipeline before the client retries
        conn.execute("UPDATE ingestion_jobs SET status = %s WHERE id = %s", (status_meanwhile, upload.job_id))

    retried = send(ctx, vendor, upload, 1000, content[1000:])
    assert (retried.finished, retried.upload_offset) == (True, len(content))
    job = job_of(ctx, vendor, upload)
    assert job["status"] == status_after
    assert ctx.store.read(job["s3_key"]) == content
    assert scratch_objects(ctx) == 0


def test_expiry_leaves_the_status_of_a_job_the_pipeline_took_over(two_vendors, aws_resources, database,
                                                                  monkeypatch):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    upload, _ = completed_but_unrecorded(ctx, vendor, monkeypatch)
    with database.admin() as conn:
        conn.execute("UPDATE ingestion_jobs SET status = 'completed' WHERE id = %s", (upload.job_id,))
        conn.execute("UPDATE tus_uploads SET expires_at = now() - interval '1 second' WHERE id = %s", (upload.id,))

    assert tus.expire(ctx) == 1
    assert job_of(ctx, vendor, upload)["status"] == "completed"
    with pytest.raises(NotFound):
        tus.status(ctx, vendor.id, upload.id, {"tus-resumable": "1.0.0"})
    assert scratch_objects(ctx) == 0
