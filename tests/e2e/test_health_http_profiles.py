"""Health profiles over HTTP: write, read, audit search, CSV export and chain verification; break-glass; 422s;
no PHI in any log line."""

import csv
import io
import logging

import requests

from nutrimatch.routes import Role
from tests.conftest import auth_header
from tests.e2e.customer_samples import SAMPLE_PROFILE

NOTE = "Takes warfarin; dislikes Thursday visits"
PROFILE = {**SAMPLE_PROFILE, "conditions": ["celiac_disease", "chronic_kidney_disease"],
           "avoid_allergens": ["sesame", "Shrimp"], "notes": NOTE}
PHI_MARKERS = ("warfarin", "Thursday", "celiac", "chronic_kidney", "sesame", "crustacean", "Shrimp")


def _new_customer(gateway: str, headers: dict[str, str], external_id: str = "patient-1") -> str:
    created = requests.post(f"{gateway}/api/v1/customers", json={"external_id": external_id, "name": "Pat"},
                            headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_profile_lifecycle_is_audited_exported_and_verified(gateway, two_vendors, aws_resources, redis_client,
                                                            caplog, capfd):
    vendor, _ = two_vendors
    clinician = {**auth_header(Role.CLINICIAN, vendor.id, user_id="dr-jones"), "User-Agent": "ward-tablet/2.1"}
    admin = auth_header(Role.VENDOR_ADMIN, vendor.id, user_id="boss")
    caplog.set_level(logging.DEBUG)

    customer_id = _new_customer(gateway, clinician)
    written = requests.put(f"{gateway}/api/v1/customers/{customer_id}/health", json=PROFILE, headers=clinician,
                           timeout=30)
    assert written.status_code == 200, written.text
    assert written.json()["version"] == 1
    rewritten = requests.put(f"{gateway}/api/v1/customers/{customer_id}/health",
                             json={**PROFILE, "weight_kg": 70}, headers=clinician, timeout=30)
    assert rewritten.json()["version"] == 2

    read = requests.get(f"{gateway}/api/v1/customers/{customer_id}/health", headers=clinician, timeout=30)
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["version"] == 2 and body["customer_id"] == customer_id and body["updated_at"]
    assert body["profile"]["notes"] == NOTE and body["profile"]["weight_kg"] == 70
    assert body["profile"]["avoid_allergens"] == ["crustacean_shellfish", "sesame"]
    assert body["limits"]["potassium_mg"]["day_max"] == 2000
    assert {"gluten", "wheat"} <= set(body["limits"]["effective_avoid_allergens"])

    trail = requests.get(f"{gateway}/api/v1/audit", params={"entity_id": customer_id}, headers=admin, timeout=30)
    assert trail.status_code == 200, trail.text
    rows = trail.json()["items"]
    assert [r["action"] for r in rows] == ["health_profile.read", "health_profile.updated",
                                           "health_profile.created", "customer.created"]
    assert all(r["actor_user_id"] == "dr-jones" and r["actor_role"] == "clinician" for r in rows)
    assert all(r["ua"] == "ward-tablet/2.1" and r["ip"] == "127.0.0.1" and r["request_id"] for r in rows)
    assert rows[1]["has_before"] and rows[1]["has_after"] and not rows[0]["has_before"]

    export = requests.get(f"{gateway}/api/v1/audit", params={"format": "csv", "action": "health_profile.read"},
                          headers=admin, timeout=30)
    assert export.status_code == 200, export.text
    assert export.headers["Content-Type"].startswith("text/csv")
    exported = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["action"], r["entity_id"]) for r in exported] == [("health_profile.read", customer_id)]
    latest = requests.get(f"{gateway}/api/v1/audit", params={"limit": 1}, headers=admin, timeout=30).json()
    assert latest["items"][0]["action"] == "audit.exported" and latest["next_cursor"]

    verified = requests.get(f"{gateway}/api/v1/audit/verify", headers=admin, timeout=30)
    assert verified.status_code == 200
    assert verified.json() == {"ok": True, "checked": 5, "first_broken_seq": None, "reason": None}

    logged = caplog.text + "".join(capfd.readouterr())
    assert "authorized" in logged  # the handlers and the authorizer did log, and were captured
    leaked = [marker for marker in PHI_MARKERS if marker.lower() in logged.lower()]
    assert not leaked, f"PHI in logs: {leaked}"


def test_bad_measures_are_422_naming_the_field(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    clinician = auth_header(Role.CLINICIAN, vendor.id)
    customer_id = _new_customer(gateway, clinician)
    for field, value in (("age", 400), ("height_cm", 3)):
        response = requests.put(f"{gateway}/api/v1/customers/{customer_id}/health",
                                json={**PROFILE, field: value}, headers=clinician, timeout=30)
        assert response.status_code == 422, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
        assert field in response.json()["error"]["message"]
    future = requests.put(f"{gateway}/api/v1/customers/{customer_id}/health",
                          json={**{k: v for k, v in PROFILE.items() if k != "age"}, "birth_date": "2999-01-01"},
                          headers=clinician, timeout=30)
    assert future.status_code == 422
    assert future.json()["error"]["details"]["errors"][0]["field"] == "birth_date"
    none_stored = requests.get(f"{gateway}/api/v1/customers/{customer_id}/health", headers=clinician, timeout=30)
    assert none_stored.status_code == 404


def test_platform_admins_need_a_justification_to_read_and_it_is_recorded(gateway, two_vendors, aws_resources,
                                                                         redis_client):
    vendor, _ = two_vendors
    customer_id = _new_customer(gateway, auth_header(Role.CLINICIAN, vendor.id))
    requests.put(f"{gateway}/api/v1/customers/{customer_id}/health", json=PROFILE,
                 headers=auth_header(Role.CLINICIAN, vendor.id), timeout=30).raise_for_status()
    platform = {**auth_header(Role.PLATFORM_ADMIN, user_id="ops-7"), "X-Vendor-Id": str(vendor.id)}
    path = f"{gateway}/api/v1/customers/{customer_id}/health"

    refused = requests.get(path, headers=platform, timeout=30)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "justification_required"
    reason = "ticket INC-4411: customer asked for a copy"
    allowed = requests.get(path, headers={**platform, "X-Access-Justification": reason}, timeout=30)
    assert allowed.status_code == 200 and allowed.json()["profile"]["notes"] == NOTE

    reads = requests.get(f"{gateway}/api/v1/audit", params={"action": "health_profile.read"}, headers=platform,
                         timeout=30).json()["items"]
    assert [(r["actor_user_id"], r["actor_role"], r["justification"]) for r in reads] == [
        ("ops-7", "platform_admin", reason)]


def test_other_roles_and_other_vendors_get_nothing(gateway, two_vendors, aws_resources, redis_client):
    vendor_a, vendor_b = two_vendors
    customer_id = _new_customer(gateway, auth_header(Role.CLINICIAN, vendor_a.id))
    path = f"{gateway}/api/v1/customers/{customer_id}/health"
    requests.put(path, json=PROFILE, headers=auth_header(Role.CLINICIAN, vendor_a.id), timeout=30).raise_for_status()
    for role in (Role.ANALYST, Role.API_CLIENT, Role.CATALOG_MANAGER):
        assert requests.get(path, headers=auth_header(role, vendor_a.id), timeout=30).status_code == 403
    assert requests.get(path, headers=auth_header(Role.CLINICIAN, vendor_b.id), timeout=30).status_code == 404
    assert requests.put(path, json=PROFILE, headers=auth_header(Role.CLINICIAN, vendor_b.id),
                        timeout=30).status_code == 404
    verify_b = requests.get(f"{gateway}/api/v1/audit/verify", headers=auth_header(Role.VENDOR_ADMIN, vendor_b.id),
                            timeout=30).json()
    assert verify_b == {"ok": True, "checked": 0, "first_broken_seq": None, "reason": None}
