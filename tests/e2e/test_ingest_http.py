"""The jobs API over HTTP: status, progress, counts, errors.csv link, cancel, learned mappings."""

import requests

from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.routes import Role
from tests.conftest import auth_header
from tests.integration.ingest_support import create_uploaded_job, run_job


def test_a_finished_job_reports_counts_progress_and_its_errors_csv(gateway, two_vendors, aws_resources):
    vendor, other = two_vendors
    job = run_job(create_uploaded_job(vendor.id, b"sku,name,kcal\nA,Apple,52\nB,Banana,abc\n"))
    headers = auth_header(Role.CATALOG_MANAGER, vendor.id)
    answer = requests.get(f"{gateway}/api/v1/ingest/jobs/{job['id']}", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "completed"
    assert body["counts"]["inserted"] == 1 and body["counts"]["rejected"] == 1
    progress = body["progress"]
    assert progress["rows_loaded"] == 2 and progress["chunks_merged"] == progress["chunks_total"]
    assert progress["fraction_done"] == 1.0
    errors_csv = requests.get(body["errors_csv_url"], timeout=30)
    assert errors_csv.status_code == 200
    assert errors_csv.text.splitlines() == ["row_number,column,value,reason", "2,calories,abc,not a number"]

    listed = requests.get(f"{gateway}/api/v1/ingest/jobs?limit=5", headers=headers, timeout=30).json()
    assert [j["id"] for j in listed["jobs"]] == [str(job["id"])]
    # Another vendor sees neither the job nor its list entry.
    stranger = auth_header(Role.VENDOR_ADMIN, other.id)
    assert requests.get(f"{gateway}/api/v1/ingest/jobs/{job['id']}", headers=stranger, timeout=30).status_code == 404
    assert requests.get(f"{gateway}/api/v1/ingest/jobs", headers=stranger, timeout=30).json()["jobs"] == []
    # A finished job cannot be cancelled.
    late = requests.post(f"{gateway}/api/v1/ingest/jobs/{job['id']}/cancel", headers=headers, timeout=30)
    assert late.status_code == 409 and late.json()["error"]["details"] == {"status": "completed"}


def test_cancelling_a_waiting_job(gateway, two_vendors, aws_resources):
    vendor, _ = two_vendors
    uploaded = create_uploaded_job(vendor.id, b"sku,name\nA,Apple\n")
    headers = auth_header(Role.VENDOR_ADMIN, vendor.id)
    cancelled = requests.post(f"{gateway}/api/v1/ingest/jobs/{uploaded.job_id}/cancel", headers=headers, timeout=30)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        events = conn.execute("SELECT event_type, payload FROM outbox_events WHERE vendor_id = %s",
                              (vendor.id,)).fetchall()
    assert [(e["event_type"], e["payload"]["job_id"]) for e in events] == [("job.cancelled", str(uploaded.job_id))]
    again = requests.post(f"{gateway}/api/v1/ingest/jobs/{uploaded.job_id}/cancel", headers=headers, timeout=30)
    assert again.status_code == 409


def test_learned_mappings_round_trip_and_unknown_fields_are_422(gateway, two_vendors):
    vendor, _ = two_vendors
    headers = auth_header(Role.CATALOG_MANAGER, vendor.id)
    saved = requests.put(f"{gateway}/api/v1/ingest/mappings", headers=headers, timeout=30, json={
        "kind": "products", "mappings": [{"header": "Artikel Nr.", "field": "external_id"},
                                         {"header": "Notes", "field": None}]})
    assert saved.status_code == 200, saved.text
    assert {(m["header_normalized"], m["field"]) for m in saved.json()} == {("artikel_nr", "external_id"),
                                                                           ("notes", None)}
    bad = requests.put(f"{gateway}/api/v1/ingest/mappings", headers=headers, timeout=30, json={
        "kind": "products", "mappings": [{"header": "X", "field": "colour"}]})
    assert bad.status_code == 422 and "colour" in bad.json()["error"]["message"]
