"""Per-vendor token buckets: 429 with Retry-After and RateLimit-* headers, then recovery."""

import time

import requests

from nutrimatch.routes import Role
from tests.conftest import auth_header


def _set_plan_limits(database, vendor_id, per_second, burst):
    with database.admin() as conn:
        conn.execute("UPDATE vendors SET rate_limit_per_second = %s, rate_limit_burst = %s WHERE id = %s",
                     (per_second, burst, vendor_id))


def test_burst_then_429_then_recovery(gateway, database, two_vendors, redis_client):
    vendor_a, vendor_b = two_vendors
    _set_plan_limits(database, vendor_a.id, per_second=1, burst=3)
    headers = auth_header(Role.VENDOR_ADMIN, vendor_a.id)
    url = f"{gateway}/api/v1/api-keys"
    answers = [requests.get(url, headers=headers, timeout=30) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    limited = answers[3]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert int(limited.headers["RateLimit-Reset"]) >= 1

    # Another vendor's bucket is its own.
    assert requests.get(url, headers=auth_header(Role.VENDOR_ADMIN, vendor_b.id), timeout=30).status_code == 200

    time.sleep(int(limited.headers["Retry-After"]) + 0.1)
    assert requests.get(url, headers=headers, timeout=30).status_code == 200
