"""Customers over HTTP through the gateway and the authorizer."""

import requests

from nutrimatch.routes import Role
from tests.conftest import auth_header


def test_customer_lifecycle(gateway, two_vendors, aws_resources, redis_client):
    vendor, other = two_vendors
    app = auth_header(Role.API_CLIENT, vendor.id)
    clinician = auth_header(Role.CLINICIAN, vendor.id)
    base = f"{gateway}/api/v1/customers"

    created = requests.post(base, json={"external_id": "crm-1", "name": "Grace", "email": "grace@example.com"},
                            headers=app, timeout=30)
    assert created.status_code == 201, created.text
    customer = created.json()
    assert created.headers["Location"] == f"/api/v1/customers/{customer['id']}"
    assert (customer["locale"], customer["status"]) == ("en-US", "active")
    duplicate = requests.post(base, json={"external_id": "crm-1"}, headers=clinician, timeout=30)
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"
    bad = requests.post(base, json={"external_id": "crm-2", "email": "grace-at-example"}, headers=app, timeout=30)
    assert bad.status_code == 422 and [d["field"] for d in bad.json()["error"]["details"]] == ["email"]

    one = f"{base}/{customer['id']}"
    assert requests.get(one, headers=auth_header(Role.ANALYST, vendor.id), timeout=30).json() == customer
    assert requests.patch(one, json={"name": "x"}, headers=app, timeout=30).status_code == 403
    patched = requests.patch(one, json={"locale": "fr-CA", "status": "inactive"}, headers=clinician, timeout=30)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["locale"], patched.json()["status"], patched.json()["name"]) == ("fr-CA", "inactive",
                                                                                           "Grace")
    assert requests.patch(one, json={"status": "deleted"}, headers=clinician, timeout=30).status_code == 422

    assert requests.get(one, headers=auth_header(Role.API_CLIENT, other.id), timeout=30).status_code == 404
    assert requests.delete(one, headers=auth_header(Role.CLINICIAN, other.id), timeout=30).status_code == 404
    assert requests.delete(one, headers=app, timeout=30).status_code == 403
    deleted = requests.delete(one, headers=clinician, timeout=30)
    assert deleted.status_code == 204
    assert requests.get(one, headers=clinician, timeout=30).status_code == 404
    assert requests.get(f"{one}/health", headers=clinician, timeout=30).status_code == 404


def test_listing_pages_with_an_opaque_cursor(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    headers = auth_header(Role.VENDOR_ADMIN, vendor.id)
    base = f"{gateway}/api/v1/customers"
    made = {requests.post(base, json={"external_id": f"p{n}"}, headers=headers, timeout=30).json()["id"]
            for n in range(7)}
    seen, params = [], {"limit": 3}
    while True:
        page = requests.get(base, params=params, headers=headers, timeout=30)
        assert page.status_code == 200, page.text
        seen += [c["id"] for c in page.json()["items"]]
        if not page.json()["next_cursor"]:
            break
        params = {"limit": 3, "cursor": page.json()["next_cursor"]}
    assert sorted(seen) == sorted(made) and len(seen) == 7
    too_many = requests.get(base, params={"limit": 101}, headers=headers, timeout=30)
    assert too_many.status_code == 422 and "limit" in too_many.json()["error"]["message"]
    garbage = requests.get(base, params={"cursor": "!!"}, headers=headers, timeout=30)
    assert garbage.status_code == 422


def test_a_nul_character_anywhere_in_a_request_is_a_422_naming_where(gateway, two_vendors, aws_resources, redis_client):
    vendor, _ = two_vendors
    admin = auth_header(Role.VENDOR_ADMIN, vendor.id)
    refused = {
        "body": requests.post(f"{gateway}/api/v1/customers", json={"external_id": "nul\u0000id"}, headers=admin,
                              timeout=30),
        "entity_id": requests.get(f"{gateway}/api/v1/audit", params={"entity_id": "a\u0000b"}, headers=admin,
                                  timeout=30),
        "brand": requests.get(f"{gateway}/api/v1/search/products", params={"brand": "a\u0000b"}, headers=admin,
                              timeout=30),
    }
    for place, answer in refused.items():
        assert answer.status_code == 422, (place, answer.text)
        (detail,) = answer.json()["error"]["details"]
        assert (detail["field"] or detail["location"], detail["type"]) == (place, "nul_character")
    escaped = requests.post(f"{gateway}/api/v1/customers", json={"external_id": "a\\u0000 as text"}, headers=admin,
                            timeout=30)
    assert escaped.status_code == 201, escaped.text
