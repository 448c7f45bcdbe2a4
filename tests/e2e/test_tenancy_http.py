"""Onboarding, API keys and authentication over HTTP through the local gateway and the real authorizer."""

import uuid

import requests

from nutrimatch.routes import Role
from tests.conftest import auth_header as token


def test_onboarding_then_api_key_lifecycle(gateway, database, redis_client):
    admin = token(Role.PLATFORM_ADMIN)
    created = requests.post(f"{gateway}/api/v1/vendors", json={"slug": "acme-foods", "name": "Acme Foods"},
                            headers=admin, timeout=30)
    assert created.status_code == 201, created.text
    vendor = created.json()
    assert vendor["plan"] == "starter" and vendor["status"] == "active"
    again = requests.post(f"{gateway}/api/v1/vendors", json={"slug": "acme-foods", "name": "Again"},
                          headers=admin, timeout=30)
    assert again.status_code == 409

    vendor_admin = token(Role.VENDOR_ADMIN, vendor["id"])
    key = requests.post(f"{gateway}/api/v1/api-keys", json={"name": "store app", "role": "api_client"},
                        headers=vendor_admin, timeout=30)
    assert key.status_code == 201, key.text
    secret = key.json()["key"]
    assert secret.startswith("nmk_") and key.json()["prefix"] == secret[:12]

    listed = requests.get(f"{gateway}/api/v1/api-keys", headers=vendor_admin, timeout=30).json()
    assert [k["id"] for k in listed] == [key.json()["id"]]
    assert "key" not in listed[0]

    as_key = {"Authorization": f"ApiKey {secret}"}
    own = requests.get(f"{gateway}/api/v1/api-keys", headers=as_key, timeout=30)
    assert own.status_code == 403  # api_client may not manage keys
    revoked = requests.delete(f"{gateway}/api/v1/api-keys/{key.json()['id']}", headers=vendor_admin, timeout=30)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert requests.get(f"{gateway}/api/v1/api-keys", headers=as_key, timeout=30).status_code == 401


def test_invalid_input_is_a_422_naming_the_field(gateway, database):
    bad = requests.post(f"{gateway}/api/v1/vendors", json={"slug": "Not A Slug!", "name": ""},
                        headers=token(Role.PLATFORM_ADMIN), timeout=30)
    assert bad.status_code == 422
    fields = {d["field"] for d in bad.json()["error"]["details"]}
    assert fields == {"slug", "name"}


def test_missing_credentials_are_a_401(gateway, database):
    response = requests.get(f"{gateway}/api/v1/vendors", timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    unknown = requests.get(f"{gateway}/api/v1/vendors/{uuid.uuid4()}",
                           headers={"Authorization": "ApiKey nmk_notarealkey000000000000"}, timeout=30)
    assert unknown.status_code == 401
