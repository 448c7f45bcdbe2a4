"""Presigned multipart uploads over HTTP: the gateway and handlers for the API, moto for the part PUTs."""

import hashlib
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from nutrimatch import aws, cli
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.routes import Role
from nutrimatch.uploads import client, tus
from nutrimatch.uploads.client import Api, StateFile, upload_file
from tests.conftest import auth_header

MIB = 1024**2
OCTETS = {"Content-Type": "application/octet-stream"}


def write_csv(path: Path, size: int) -> bytes:
    """A CSV file of exactly `size` bytes (a header, then numbered product rows); returns its content."""
    header = b"external_id,name,brand,price,calories\n"
    rows = b"".join(f"sku-{i:07d},Product {i} oats and rye,Brand {i % 97},{i % 991}.{i % 100:02d},{i % 800}\n"
                    .encode() for i in range(size // 40 + 1))
    content = (header + rows)[:size]
    path.write_bytes(content)
    return content


def admin(vendor):
    return auth_header(Role.CATALOG_MANAGER, vendor.id)


def start(gateway, vendor, size, **extra):
    body = {"kind": "products", "mode": "upsert", "file_name": "catalog.csv", "size_bytes": size, **extra}
    return requests.post(f"{gateway}/api/v1/ingest/csv", json=body, headers=admin(vendor), timeout=30)


def put_part(plan_urls, content, part_size, number):
    url = next(u["url"] for u in plan_urls if u["part_number"] == number)
    data = content[(number - 1) * part_size: number * part_size]
    response = requests.put(url, data=data, headers=OCTETS, timeout=60)
    assert response.status_code == 200, response.text
    return {"part_number": number, "etag": response.headers["ETag"]}


def stored_object(settings, key) -> bytes:
    return aws.client("s3", settings).get_object(Bucket=settings.upload_bucket, Key=key)["Body"].read()


def test_a_skipped_part_is_supplied_on_resume_and_the_object_is_the_file(gateway, two_vendors, aws_resources,
                                                                         redis_client, tmp_path):
    vendor, _ = two_vendors
    content = write_csv(tmp_path / "catalog.csv", 20 * MIB)
    created = start(gateway, vendor, len(content), content_sha256=hashlib.sha256(content).hexdigest())
    assert created.status_code == 201, created.text
    plan = created.json()
    assert (plan["part_size"], plan["part_count"], plan["job"]["status"]) == (8 * MIB, 3, "awaiting_upload")
    job_id = plan["job"]["id"]
    assert plan["job"]["s3_key"] == f"incoming/{vendor.id}/{job_id}/catalog.csv"

    first = put_part(plan["urls"], content, plan["part_size"], 1)
    put_part(plan["urls"], content, plan["part_size"], 3)  # part 2 "lost" when the connection dropped

    resumed = requests.get(f"{gateway}/api/v1/ingest/jobs/{job_id}/upload", headers=admin(vendor), timeout=30)
    assert resumed.status_code == 200, resumed.text
    state = resumed.json()
    assert [p["part_number"] for p in state["uploaded_parts"]] == [1, 3]
    assert [u["part_number"] for u in state["urls"]] == [2]
    assert state["job"]["status"] == "uploading"
    second = put_part(state["urls"], content, plan["part_size"], 2)
    third = {"part_number": 3, "etag": state["uploaded_parts"][1]["etag"]}

    done = requests.post(f"{gateway}/api/v1/ingest/jobs/{job_id}/upload/complete",
                         json={"parts": [first, second, third]}, headers=admin(vendor), timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "uploaded"
    assert done.json()["content_sha256"] == hashlib.sha256(content).hexdigest()
    stored = stored_object(aws_resources, plan["job"]["s3_key"])
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(content).hexdigest()
    scratch = aws.client("s3", aws_resources).list_objects_v2(Bucket=aws_resources.upload_bucket,
                                                              Prefix="tus-scratch/")
    assert scratch.get("KeyCount", 0) == 0

    again = requests.post(f"{gateway}/api/v1/ingest/jobs/{job_id}/upload/complete",
                          json={"parts": [first, second, third]}, headers=admin(vendor), timeout=30)
    assert again.status_code == 409


def test_a_wrong_part_list_gets_a_clear_4xx(gateway, two_vendors, aws_resources, redis_client, tmp_path):
    vendor, _ = two_vendors
    content = write_csv(tmp_path / "catalog.csv", 17 * MIB)
    plan = start(gateway, vendor, len(content)).json()
    parts = [put_part(plan["urls"], content, plan["part_size"], n) for n in (1, 2)]
    complete = f"{gateway}/api/v1/ingest/jobs/{plan['job']['id']}/upload/complete"

    def attempt(listed):
        response = requests.post(complete, json={"parts": listed}, headers=admin(vendor), timeout=30)
        assert response.status_code == 422, response.text
        return response.json()["error"]["details"]

    assert attempt(parts)["missing"] == [3]
    assert attempt([*parts, {"part_number": 3, "etag": '"x"'}])["not_uploaded"] == [3]
    assert attempt([*parts, {"part_number": 4, "etag": '"x"'}])["unknown"] == [4]
    wrong = attempt([parts[0], {"part_number": 2, "etag": '"0123"'}])["etag_mismatch"]
    assert wrong == [{"part_number": 2, "sent": '"0123"', "stored": parts[1]["etag"]}]
    assert attempt([parts[1], parts[0]])["out_of_order"] == [1]
    # A part of the wrong size: part 3 must hold the last 1 MiB.
    url = next(u["url"] for u in plan["urls"] if u["part_number"] == 3)
    etag = requests.put(url, data=b"1,x\n" * 10, headers=OCTETS, timeout=30).headers["ETag"]
    sizes = attempt([*parts, {"part_number": 3, "etag": etag}])["wrong_size"]
    assert sizes == [{"part_number": 3, "size": 40, "expected": 1 * MIB}]


def test_over_the_limit_is_413_and_10_gb_pages_its_urls(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    too_big = start(gateway, vendor, 10 * 1024**3 + 1)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["details"]["max_upload_bytes"] == 10 * 1024**3

    plan = start(gateway, vendor, 10 * 1000**3).json()
    assert (plan["part_size"], plan["part_count"]) == (8 * MIB, 1193)
    assert len(plan["urls"]) == 1000
    assert plan["next_first_part"] == 1001
    rest = requests.get(f"{gateway}/api/v1/ingest/jobs/{plan['job']['id']}/upload?first_part=1001",
                        headers=admin(vendor), timeout=30).json()
    assert [u["part_number"] for u in rest["urls"]] == list(range(1001, 1194))
    assert rest["next_first_part"] is None


@pytest.mark.parametrize(("field", "value"), [("content_type", "application/vnd.ms-excel"),
                                              ("file_name", "catalog.xlsx")])
def test_a_declared_non_csv_is_refused(gateway, two_vendors, aws_resources, redis_client, field, value):
    vendor, _ = two_vendors
    response = start(gateway, vendor, 1000, **{field: value})
    assert response.status_code == 422
    assert "not CSV" in response.json()["error"]["message"]


def test_a_customers_file_cannot_replace(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    response = start(gateway, vendor, 1000, kind="customers", mode="replace")
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert (detail["field"], detail["message"]) == (
        "mode", "replace is for products; a customers file is merged into what is there (mode upsert)")


def test_a_workbook_is_refused_at_completion_and_never_reaches_incoming(gateway, two_vendors, aws_resources,
                                                                         redis_client):
    vendor, _ = two_vendors
    workbook = b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 40
    plan = start(gateway, vendor, len(workbook)).json()
    part = put_part(plan["urls"], workbook, plan["part_size"], 1)
    refused = requests.post(f"{gateway}/api/v1/ingest/jobs/{plan['job']['id']}/upload/complete",
                            json={"parts": [part]}, headers=admin(vendor), timeout=30)
    assert refused.status_code == 422
    assert "Excel workbook" in refused.json()["error"]["message"]
    objects = aws.client("s3", aws_resources).list_objects_v2(Bucket=aws_resources.upload_bucket)
    assert objects.get("KeyCount", 0) == 0
    after = requests.get(f"{gateway}/api/v1/ingest/jobs/{plan['job']['id']}/upload", headers=admin(vendor),
                         timeout=30)
    assert after.status_code == 409
    assert after.json()["error"]["details"]["status"] == "failed"


def test_abort_cancels_the_job_and_another_vendor_finds_nothing(gateway, two_vendors, aws_resources, redis_client):
    vendor_a, vendor_b = two_vendors
    plan = start(gateway, vendor_a, 1000).json()
    upload = f"{gateway}/api/v1/ingest/jobs/{plan['job']['id']}/upload"
    for method in ("GET", "DELETE"):
        assert requests.request(method, upload, headers=admin(vendor_b), timeout=30).status_code == 404
    assert requests.get(f"{gateway}/api/v1/ingest/jobs/{uuid.uuid4()}/upload", headers=admin(vendor_a),
                        timeout=30).status_code == 404
    aborted = requests.delete(upload, headers=admin(vendor_a), timeout=30)
    assert aborted.status_code == 200
    assert aborted.json()["status"] == "cancelled"
    assert requests.get(upload, headers=admin(vendor_a), timeout=30).status_code == 409
    uploads = aws.client("s3", aws_resources).list_multipart_uploads(Bucket=aws_resources.upload_bucket)
    assert not uploads.get("Uploads")


class Interrupt:
    """A progress callback that presses Ctrl-C once `after` bytes have been sent."""

    def __init__(self, after: int) -> None:
        self.after, self.sent = after, 0

    def __call__(self, sent: int) -> None:
        self.sent += sent
        if self.after and self.sent > self.after:
            self.after = 0
            raise KeyboardInterrupt


@pytest.mark.parametrize("use_tus", [False, True], ids=["multipart", "tus"])
def test_the_client_resumes_after_ctrl_c(gateway, two_vendors, aws_resources, redis_client, tmp_path, use_tus):
    vendor, _ = two_vendors
    path = tmp_path / "catalog.csv"
    content = write_csv(path, 19 * MIB)
    api = Api(gateway, admin(vendor)["Authorization"].removeprefix("Bearer "))
    options = {"kind": "products", "mode": "upsert", "use_tus": use_tus, "parallel": 1, "state_dir": tmp_path}
    with pytest.raises(KeyboardInterrupt):
        upload_file(api, path, progress=Interrupt(9 * MIB), **options)
    assert len(list(tmp_path.glob("*.json"))) == 1

    progress = Interrupt(0)
    result = upload_file(api, path, progress=progress, **options)
    assert result.resumed
    assert progress.sent == len(content)  # what the server already held, then the rest
    assert not list(tmp_path.glob("*.json"))
    key = f"incoming/{vendor.id}/{result.job_id}/catalog.csv"
    assert hashlib.sha256(stored_object(aws_resources, key)).hexdigest() == hashlib.sha256(content).hexdigest()


def test_a_rerun_after_the_upload_completed_sends_nothing(gateway, two_vendors, aws_resources, redis_client,
                                                          tmp_path):
    vendor, _ = two_vendors
    path = tmp_path / "catalog.csv"
    write_csv(path, 2 * MIB)
    api = Api(gateway, admin(vendor)["Authorization"].removeprefix("Bearer "))
    first = upload_file(api, path, kind="products", mode="upsert", state_dir=tmp_path)
    # Stopped just after completing, before forgetting the upload:
    StateFile(tmp_path, path).save({"method": "multipart", "job_id": first.job_id})
    progress = Interrupt(0)
    again = upload_file(api, path, kind="products", mode="upsert", state_dir=tmp_path, progress=progress)
    assert (again.job_id, again.resumed, progress.sent) == (first.job_id, True, 0)


def test_a_rerun_waits_for_a_tus_upload_still_being_written_instead_of_starting_over(
        gateway, two_vendors, aws_resources, redis_client, tmp_path, monkeypatch):
    vendor, _ = two_vendors
    path = tmp_path / "catalog.csv"
    content = write_csv(path, 9 * MIB)
    api = Api(gateway, admin(vendor)["Authorization"].removeprefix("Bearer "))
    options = {"kind": "products", "mode": "upsert", "use_tus": True, "state_dir": tmp_path}
    with pytest.raises(KeyboardInterrupt):
        upload_file(api, path, progress=Interrupt(5 * MIB), **options)
    saved = StateFile(tmp_path, path).load("tus")

    # The server is still writing the interrupted run's last PATCH: HEAD answers 423 until it is done.
    monkeypatch.setattr(tus, "HEAD_LOCK_WAIT", "300ms")
    monkeypatch.setattr(client, "RESUME_PAUSE_SECONDS", 0.2)
    locked = threading.Event()

    def last_patch_still_writing():
        with scoped_transaction(get_database().writer, vendor.id) as conn:
            conn.execute("SELECT 1 FROM tus_uploads WHERE id = %s FOR UPDATE", (saved["url"].rsplit("/", 1)[1],))
            locked.set()
            time.sleep(1.5)

    holder = threading.Thread(target=last_patch_still_writing)
    holder.start()
    locked.wait(5)
    result = upload_file(api, path, **options)
    holder.join()
    assert (result.job_id, result.resumed) == (saved["job_id"], True)
    key = f"incoming/{vendor.id}/{result.job_id}/catalog.csv"
    assert hashlib.sha256(stored_object(aws_resources, key)).hexdigest() == hashlib.sha256(content).hexdigest()
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        assert conn.execute("SELECT count(*) FROM ingestion_jobs").fetchone()["count"] == 1


def test_the_upload_command(gateway, two_vendors, aws_resources, redis_client, tmp_path):
    vendor, _ = two_vendors
    path = tmp_path / "customers.csv"
    write_csv(path, 3 * MIB)
    token = admin(vendor)["Authorization"].removeprefix("Bearer ")
    outcome = CliRunner().invoke(cli.app, [
        "upload", str(path), "--kind", "customers", "--tus", "--api", gateway, "--token", token,
        "--state-dir", str(tmp_path / "state"), "--no-follow"])
    assert outcome.exit_code == 0, outcome.output
    assert "Uploaded 3,145,728 bytes" in outcome.output


def test_the_client_declares_the_files_sha256_for_ingestion_to_check(gateway, two_vendors, aws_resources,
                                                                     redis_client, tmp_path):
    vendor, _ = two_vendors
    path = tmp_path / "catalog.csv"
    content = write_csv(path, 2 * MIB)
    api = Api(gateway, admin(vendor)["Authorization"].removeprefix("Bearer "))
    result = upload_file(api, path, kind="products", mode="upsert", state_dir=tmp_path, checksum=True)
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        declared = conn.execute("SELECT content_sha256 FROM ingestion_jobs WHERE vendor_id = %s AND id = %s",
                                (vendor.id, result.job_id)).fetchone()["content_sha256"]
    assert declared == hashlib.sha256(content).hexdigest()


def test_the_upload_command_follows_the_job_and_summarizes_it(gateway, two_vendors, aws_resources, redis_client,
                                                              event_pump, tmp_path):
    vendor, other = two_vendors
    token = admin(vendor)["Authorization"].removeprefix("Bearer ")

    def run(*args: str):
        return CliRunner().invoke(cli.app, [*args, "--api", gateway])

    def upload(name: str, content: bytes, *options: str):
        path = tmp_path / name
        path.write_bytes(content)
        return run("upload", str(path), "--token", token, "--state-dir", str(tmp_path / "state"), *options)

    loaded = upload("catalog.csv", b"sku,name,kcal\nA,Apple,52\nB,Banana,abc\nC,Cherry,50\n")
    assert loaded.exit_code == 0, loaded.output
    assert "completed in" in loaded.output
    assert "3 rows — 2 inserted, 0 updated, 0 unchanged, 0 retired, 1 rejected" in loaded.output
    errors_csv = next(line.split(": ", 1)[1] for line in loaded.output.splitlines() if "(errors.csv)" in line)
    assert requests.get(errors_csv, timeout=30).text.splitlines()[1] == "2,calories,abc,not a number"
    assert "is live." in loaded.output

    refused = upload("no-names.csv", b"sku,kcal\nA,52\n")
    assert refused.exit_code == 1, refused.output
    assert "failed while planning" in refused.output and "name" in refused.output.split("failed while planning")[1]

    # Not followed at upload: `nutrimatch job` follows it later, or tells where it is.
    unfollowed = upload("again.csv", b"sku,name,kcal\nA,Apple,52\nD,Date,282\n", "--no-follow")
    assert unfollowed.exit_code == 0 and "completed" not in unfollowed.output, unfollowed.output
    job_id = unfollowed.output.split("job ")[-1].strip()
    followed = run("job", job_id, "--token", token)
    assert followed.exit_code == 0, followed.output
    assert "2 rows — 1 inserted, 0 updated, 1 unchanged, 0 retired, 0 rejected" in followed.output
    assert "errors.csv" not in followed.output
    assert run("job", job_id, "--token", token, "--no-follow").output.strip() == followed.output.strip()
    stranger = auth_header(Role.VENDOR_ADMIN, other.id)["Authorization"].removeprefix("Bearer ")
    hidden = run("job", job_id, "--token", stranger)
    assert hidden.exit_code == 1 and "not found" in hidden.output
