"""The presigned multipart core against PostgreSQL and moto: uploads S3 dropped, and the head part's detour."""

import base64
import json
from urllib.parse import unquote_plus

import pytest
import requests

from nutrimatch import aws
from nutrimatch.db import scoped_transaction
from nutrimatch.errors import Conflict, Gone, NotFound
from nutrimatch.ingest import service
from nutrimatch.uploads import UploadContext, multipart, tus
from nutrimatch.uploads.multipart import CompletedPart, CompleteUpload, NewCsvUpload
from tests.integration.upload_support import the_uploaded_record_lost

CSV = b"external_id,name\n" + b"".join(f"sku-{i},Oats {i}\n".encode() for i in range(1000))


def start(ctx, vendor, size=len(CSV)):
    return multipart.start(ctx, vendor.id, NewCsvUpload(kind="products", file_name="c.csv", size_bytes=size), "t")


def put_head_part(plan):
    response = requests.put(plan.urls[0].url, data=CSV, headers={"Content-Type": "application/octet-stream"},
                            timeout=30)
    return CompleteUpload(parts=[CompletedPart(part_number=1, etag=response.headers["ETag"])])


def test_an_upload_s3_has_dropped_is_gone(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    plan = start(ctx, vendor)
    ctx.store.abort(plan.job.s3_key, plan.upload_id)  # as the bucket's lifecycle rule does after N days
    with pytest.raises(Gone):
        multipart.status(ctx, vendor.id, plan.job.id)


def test_a_tus_job_is_not_a_multipart_job(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    metadata = f"kind {base64.b64encode(b'products').decode()},filename {base64.b64encode(b'c.csv').decode()}"
    upload = tus.create(ctx, vendor.id, "t", {"tus-resumable": "1.0.0", "upload-length": "10",
                                              "upload-metadata": metadata}, b"")
    for operation in (multipart.status, multipart.abort):
        with pytest.raises(NotFound):
            operation(ctx, vendor.id, upload.job_id)


def test_the_head_part_waits_outside_incoming_so_only_the_finished_object_starts_an_ingest(two_vendors,
                                                                                           aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    plan = start(ctx, vendor)
    job = multipart.complete(ctx, vendor.id, plan.job.id, put_head_part(plan))
    assert job.status == "uploaded"
    assert ctx.store.read(job.s3_key) == CSV
    sqs = aws.client("sqs", aws_resources)
    queue = aws.queue_url(aws_resources.ingest_queue, aws_resources)
    keys = set()
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            records = json.loads(message["Body"]).get("Records", [])
            keys.update(unquote_plus(record["s3"]["object"]["key"]) for record in records)
    assert keys == {job.s3_key}


def test_complete_retried_after_its_record_was_lost_answers_the_job_uploaded(two_vendors, aws_resources,
                                                                              monkeypatch):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    plan = start(ctx, vendor)
    request = put_head_part(plan)
    with the_uploaded_record_lost(monkeypatch):
        multipart.complete(ctx, vendor.id, plan.job.id, request)

    with pytest.raises(Conflict) as resumed:  # what the CLI's rerun asks first: "already complete", not "gone"
        multipart.status(ctx, vendor.id, plan.job.id)
    assert resumed.value.details == {"status": "uploaded"}
    job = multipart.complete(ctx, vendor.id, plan.job.id, request)
    assert job.status == "uploaded"
    assert ctx.store.read(job.s3_key) == CSV


def test_cancelling_the_job_through_the_jobs_api_aborts_its_upload(two_vendors, aws_resources):
    vendor, _ = two_vendors
    ctx = UploadContext.current()
    plan = start(ctx, vendor)
    request = put_head_part(plan)
    with scoped_transaction(ctx.database.writer, vendor.id) as conn:
        assert service.cancel_job(conn, ctx.store.s3, vendor.id, plan.job.id).status == "cancelled"
    assert not ctx.store.s3.list_multipart_uploads(Bucket=ctx.store.bucket).get("Uploads")
    assert ctx.store.s3.list_objects_v2(Bucket=ctx.store.bucket).get("KeyCount", 0) == 0
    with pytest.raises(Conflict):
        multipart.complete(ctx, vendor.id, plan.job.id, request)
