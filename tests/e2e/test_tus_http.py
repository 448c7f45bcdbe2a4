"""The tus server over HTTP, with the real tuspy client and with raw requests for the protocol's corners."""

import base64
import hashlib
import socket
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from tusclient.client import TusClient

from nutrimatch import aws
from nutrimatch.api.modules import import_function_module
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.local.lambdas import FUNCTIONS_DIR
from nutrimatch.routes import Role
from nutrimatch.uploads import tus
from tests.conftest import auth_header
from tests.e2e.test_uploads_http import write_csv

MIB = 1024**2
METADATA = {"kind": "products", "mode": "replace", "filename": "catalog.csv"}
CSV = b"external_id,name,price\n" + b"".join(f"sku-{i},Oats {i},{i}.50\n".encode() for i in range(200))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tus_headers(vendor, **extra):
    return {**auth_header(Role.VENDOR_ADMIN, vendor.id), "Tus-Resumable": "1.0.0", **extra}


def create(gateway, vendor, length, metadata=METADATA, body=None, **extra):
    headers = tus_headers(vendor, **{"Upload-Length": str(length),
                                     "Upload-Metadata": ",".join(f"{k} {b64(v)}" for k, v in metadata.items()),
                                     **extra})
    if body is not None:
        headers.setdefault("Content-Type", "application/offset+octet-stream")
    return requests.post(f"{gateway}/api/v1/uploads/tus", headers=headers, data=body, timeout=30)


def patch(url, vendor, offset, body, **extra):
    headers = tus_headers(vendor, **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
                                     **extra})
    return requests.patch(url, data=body, headers=headers, timeout=60)


def job_of(upload_url, vendor):
    head = requests.head(upload_url, headers=tus_headers(vendor), timeout=30)
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        return conn.execute("SELECT status, s3_key, error FROM ingestion_jobs WHERE id = %s",
                            (head.headers["Ingestion-Job-Id"],)).fetchone()


def cut_patch(url, vendor, offset, declared, sent):
    """A PATCH whose connection drops after `sent` bytes of a `declared`-byte body."""
    parts = urlsplit(url)
    headers = {**tus_headers(vendor), "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
               "Content-Length": str(len(declared)), "Host": parts.netloc}
    request = f"PATCH {parts.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port)) as conn:
        conn.sendall(request.encode() + declared[:sent])


def wait_for_offset(database, at_least):
    """Until the server has stored the cut request's bytes: the local gateway runs one resolver per function
    for all its threads, so requests to one function must not overlap there (in Lambda they never do)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with database.admin() as conn:
            if conn.execute("SELECT max(upload_offset) FROM tus_uploads").fetchone()[0] >= at_least:
                time.sleep(0.2)  # the handler is still shaping its response after the commit
                return
        time.sleep(0.05)
    raise AssertionError("the cut request's bytes never arrived")


def test_tuspy_upload_cut_midway_is_resumed_by_a_new_client(gateway, two_vendors, aws_resources, redis_client,
                                                            tmp_path, database):
    vendor, _ = two_vendors
    path = tmp_path / "catalog.csv"
    content = write_csv(path, 13 * MIB + 12345)
    endpoint = f"{gateway}/api/v1/uploads/tus"

    first = TusClient(endpoint, headers=auth_header(Role.CATALOG_MANAGER, vendor.id)).uploader(
        file_path=str(path), chunk_size=2 * MIB, metadata=METADATA, upload_checksum=True)
    first.upload(stop_at=5 * MIB)  # 2, 2 and 1 MiB: two tails, then a 5 MiB part
    assert first.offset == 5 * MIB
    # The connection drops in the middle of the next chunk: the server keeps what arrived (tus allows it).
    cut_patch(first.url, vendor, 5 * MIB, content[5 * MIB: 9 * MIB], sent=1 * MIB + 7)
    wait_for_offset(database, 5 * MIB + 1)

    second = TusClient(endpoint, headers=auth_header(Role.CATALOG_MANAGER, vendor.id)).uploader(
        file_path=str(path), url=first.url, chunk_size=3 * MIB, upload_checksum=True, retries=3, retry_delay=0)
    assert second.offset == 6 * MIB + 7
    second.upload()
    assert second.offset == len(content)

    job = job_of(first.url, vendor)
    assert job["status"] == "uploaded"
    stored = aws.client("s3", aws_resources).get_object(Bucket=aws_resources.upload_bucket, Key=job["s3_key"])
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == hashlib.sha256(content).hexdigest()
    scratch = aws.client("s3", aws_resources).list_objects_v2(Bucket=aws_resources.upload_bucket, Prefix="tus-scratch/")
    assert scratch.get("KeyCount", 0) == 0


def test_creation_with_upload_and_head(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    created = create(gateway, vendor, len(CSV) + 10, body=CSV)
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Offset"] == str(len(CSV))
    assert created.headers["Tus-Resumable"] == "1.0.0"
    expires = datetime.strptime(created.headers["Upload-Expires"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    url = f"{gateway}{created.headers['Location']}"

    head = requests.head(url, headers=tus_headers(vendor), timeout=30)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == str(len(CSV))
    assert head.headers["Upload-Length"] == str(len(CSV) + 10)
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Tus-Resumable"] == "1.0.0"
    assert tus.parse_metadata(head.headers["Upload-Metadata"]) == METADATA

    finished = patch(url, vendor, len(CSV), b"sku-x,y,1\n")
    assert finished.status_code == 204
    assert finished.headers["Upload-Offset"] == str(len(CSV) + 10)
    assert "Upload-Expires" not in finished.headers
    assert job_of(url, vendor)["status"] == "uploaded"


def test_wrong_offset_bad_checksum_and_oversize_chunks_change_nothing(gateway, two_vendors, aws_resources,
                                                                      redis_client):
    vendor, _ = two_vendors
    url = f"{gateway}{create(gateway, vendor, 2 * len(CSV)).headers['Location']}"
    assert patch(url, vendor, 0, CSV[:100]).status_code == 204

    wrong = patch(url, vendor, 50, CSV[50:150])
    assert wrong.status_code == 409
    assert wrong.json()["error"]["details"]["upload_offset"] == 100
    sha1 = base64.b64encode(hashlib.sha1(b"something else").digest()).decode()
    mismatch = patch(url, vendor, 100, CSV[100:200], **{"Upload-Checksum": f"sha1 {sha1}"})
    assert mismatch.status_code == 460
    assert mismatch.headers["Tus-Resumable"] == "1.0.0"
    assert patch(url, vendor, 100, CSV[100:200], **{"Upload-Checksum": "crc32 AAAA"}).status_code == 400
    assert patch(url, vendor, 100, b"x" * (2 * len(CSV))).status_code == 413  # past Upload-Length
    assert patch(url, vendor, 100, CSV[100:200], **{"Content-Type": "application/json"}).status_code == 415
    assert patch(url, vendor, 100, CSV[100:200], **{"Tus-Resumable": "0.2.2"}).status_code == 412
    too_big = patch(url, vendor, 100, b"x" * (tus.MAX_CHUNK_BYTES + 1))
    assert too_big.status_code == 413
    assert "Tus-Max-Chunk-Size" in too_big.json()["error"]["message"]
    assert requests.head(url, headers=tus_headers(vendor), timeout=30).headers["Upload-Offset"] == "100"

    good = base64.b64encode(hashlib.sha1(CSV[100:200]).digest()).decode()
    assert patch(url, vendor, 100, CSV[100:200], **{"Upload-Checksum": f"sha1 {good}"}).status_code == 204


def test_termination_then_404(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    url = f"{gateway}{create(gateway, vendor, 10 * MIB, body=CSV).headers['Location']}"
    job = job_of(url, vendor)
    deleted = requests.delete(url, headers=tus_headers(vendor), timeout=30)
    assert deleted.status_code == 204
    assert deleted.headers["Tus-Resumable"] == "1.0.0"
    for method in ("HEAD", "DELETE"):
        assert requests.request(method, url, headers=tus_headers(vendor), timeout=30).status_code == 404
    assert patch(url, vendor, len(CSV), CSV).status_code == 404
    s3 = aws.client("s3", aws_resources)
    assert not s3.list_multipart_uploads(Bucket=aws_resources.upload_bucket).get("Uploads")
    assert s3.list_objects_v2(Bucket=aws_resources.upload_bucket).get("KeyCount", 0) == 0
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        status = conn.execute("SELECT status FROM ingestion_jobs WHERE s3_key = %s", (job["s3_key"],)).fetchone()
    assert status["status"] == "cancelled"


def test_expired_upload_is_gone_then_cleaned_up(gateway, two_vendors, aws_resources, redis_client, database):
    vendor, _ = two_vendors
    url = f"{gateway}{create(gateway, vendor, 10 * MIB, body=CSV).headers['Location']}"
    with database.admin() as conn:
        conn.execute("UPDATE tus_uploads SET expires_at = now() - interval '1 minute'")
    assert requests.head(url, headers=tus_headers(vendor), timeout=30).status_code == 410
    assert patch(url, vendor, len(CSV), CSV).status_code == 410

    scheduled = import_function_module(FUNCTIONS_DIR, "tus").expire_handler  # what the schedule invokes
    assert scheduled({}, None) == {"expired": 1}
    assert requests.head(url, headers=tus_headers(vendor), timeout=30).status_code == 404
    s3 = aws.client("s3", aws_resources)
    assert s3.list_objects_v2(Bucket=aws_resources.upload_bucket, Prefix="tus-scratch/").get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket=aws_resources.upload_bucket).get("Uploads")


def test_limits_metadata_and_non_csv_are_refused(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    assert create(gateway, vendor, 10 * 1024**3 + 1).status_code == 413
    missing = create(gateway, vendor, 100, metadata={"filename": "a.csv", "mode": "merge"})
    assert missing.status_code == 422
    assert set(missing.json()["error"]["details"]) == {"kind", "mode"}
    assert create(gateway, vendor, 100, metadata={**METADATA, "filetype": "application/vnd.ms-excel"}
                  ).status_code == 422
    assert create(gateway, vendor, 100, **{"Upload-Metadata": "kind ###"}).status_code == 400

    workbook = b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 300
    url = f"{gateway}{create(gateway, vendor, len(workbook)).headers['Location']}"
    refused = patch(url, vendor, 0, workbook)
    assert refused.status_code == 422
    assert "not CSV" in refused.json()["error"]["message"]
    assert requests.head(url, headers=tus_headers(vendor), timeout=30).status_code == 404
    assert not aws.client("s3", aws_resources).list_multipart_uploads(Bucket=aws_resources.upload_bucket
                                                                      ).get("Uploads")


def test_another_vendors_upload_is_404(gateway, two_vendors, aws_resources, redis_client):
    vendor_a, vendor_b = two_vendors
    url = f"{gateway}{create(gateway, vendor_a, 10 * MIB, body=CSV).headers['Location']}"
    for method in ("HEAD", "DELETE"):
        response = requests.request(method, url, headers=tus_headers(vendor_b), timeout=30)
        assert response.status_code == 404
        assert response.headers["Tus-Resumable"] == "1.0.0"
    assert patch(url, vendor_b, len(CSV), CSV).status_code == 404
    assert requests.head(url, headers=tus_headers(vendor_a), timeout=30).headers["Upload-Offset"] == str(len(CSV))


def test_options_advertises_the_server_and_tus_resumable_is_on_every_other_response(gateway, two_vendors,
                                                                                      aws_resources, redis_client):
    vendor, _ = two_vendors
    options = requests.options(f"{gateway}/api/v1/uploads/tus", timeout=30)
    assert options.status_code == 204
    assert options.headers["Tus-Version"] == "1.0.0"
    assert "checksum" in options.headers["Tus-Extension"].split(",")
    assert options.headers["Tus-Checksum-Algorithm"].split(",")[0] == "sha1"
    assert int(options.headers["Tus-Max-Size"]) == 10 * 1024**3
    assert int(options.headers["Tus-Max-Chunk-Size"]) == tus.MAX_CHUNK_BYTES

    url = f"{gateway}{create(gateway, vendor, 200).headers['Location']}"
    responses = [
        create(gateway, vendor, 100), create(gateway, vendor, -1),
        requests.head(url, headers=tus_headers(vendor), timeout=30),
        requests.head(f"{gateway}/api/v1/uploads/tus/not-a-uuid", headers=tus_headers(vendor), timeout=30),
        patch(url, vendor, 0, CSV[:100]), patch(url, vendor, 7, CSV[:10]),
        requests.post(f"{gateway}/api/v1/uploads/tus", headers=auth_header(Role.VENDOR_ADMIN, vendor.id), timeout=30),
        requests.delete(url, headers=tus_headers(vendor), timeout=30),
    ]
    assert [r.status_code for r in responses] == [201, 400, 200, 422, 204, 409, 412, 204]
    assert all(r.headers.get("Tus-Resumable") == "1.0.0" for r in responses)



def test_an_unsupported_version_is_412_naming_the_supported_one(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    url = f"{gateway}{create(gateway, vendor, 200).headers['Location']}"
    old = {"Tus-Resumable": "0.2.2"}
    responses = [create(gateway, vendor, 100, **old),
                 requests.head(url, headers=tus_headers(vendor, **old), timeout=30),
                 patch(url, vendor, 0, CSV[:10], **old)]
    assert [(r.status_code, r.headers.get("Tus-Version")) for r in responses] == [(412, "1.0.0")] * 3


def test_a_refused_first_chunk_leaves_no_job_and_no_upload_behind(gateway, two_vendors, aws_resources,
                                                                   redis_client):
    vendor, _ = two_vendors
    other = base64.b64encode(hashlib.sha1(b"something else").digest()).decode()
    refused = [
        create(gateway, vendor, len(CSV), body=CSV, **{"Upload-Checksum": f"sha1 {other}"}),
        create(gateway, vendor, len(CSV), body=CSV, **{"Upload-Checksum": "sha1 AAAA"}),
        create(gateway, vendor, len(CSV), body=CSV, **{"Content-Type": "text/csv"}),
        create(gateway, vendor, len(CSV) - 1, body=CSV),
    ]
    assert [r.status_code for r in refused] == [460, 400, 415, 413]
    assert not [r for r in refused if "Location" in r.headers]
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        assert conn.execute("SELECT count(*) FROM ingestion_jobs").fetchone()["count"] == 0
    assert not aws.client("s3", aws_resources).list_multipart_uploads(Bucket=aws_resources.upload_bucket
                                                                      ).get("Uploads")


def test_cancelling_the_job_through_the_jobs_api_ends_its_tus_upload(gateway, two_vendors, aws_resources,
                                                                      redis_client):
    vendor, _ = two_vendors
    created = create(gateway, vendor, 2 * len(CSV), body=CSV)
    url = f"{gateway}{created.headers['Location']}"
    s3 = aws.client("s3", aws_resources)
    assert s3.list_objects_v2(Bucket=aws_resources.upload_bucket, Prefix="tus-scratch/")["KeyCount"] == 1

    cancelled = requests.post(f"{gateway}/api/v1/ingest/jobs/{created.headers['Ingestion-Job-Id']}/cancel",
                              headers=auth_header(Role.VENDOR_ADMIN, vendor.id), timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert patch(url, vendor, len(CSV), CSV).status_code == 404
    assert requests.head(url, headers=tus_headers(vendor), timeout=30).status_code == 404
    assert not s3.list_multipart_uploads(Bucket=aws_resources.upload_bucket).get("Uploads")
    assert s3.list_objects_v2(Bucket=aws_resources.upload_bucket).get("KeyCount", 0) == 0
