"""The main flow over HTTP, as `make run` drives it: onboard, upload a catalog (presigned multipart), S3
notification → SQS → starter → state machine → live products, search them, customers with profiles, matches."""

import requests

from nutrimatch.demo.seed import DEMO_SLUG, seed
from nutrimatch.settings import get_settings


def test_the_demo_seed_runs_the_whole_path(gateway, database, event_pump, redis_client):
    messages = []
    demo = seed(get_settings(), gateway, products=400, customers=3, say=messages.append)
    assert any("catalog ingested" in m for m in messages), messages
    headers = {"Authorization": f"Bearer {demo.token}"}
    hits = requests.get(f"{gateway}/api/v1/search/products?q=yogurt&limit=5", headers=headers, timeout=30).json()
    assert hits["products"], hits
    customers = requests.get(f"{gateway}/api/v1/customers?limit=10", headers=headers, timeout=30).json()["items"]
    assert len(customers) == 3
    profile = requests.get(f"{gateway}/api/v1/customers/{customers[0]['id']}/health", headers=headers, timeout=30)
    assert profile.status_code == 200 and profile.json()["version"] == 1
    matches = requests.get(f"{gateway}/api/v1/matches/{customers[0]['id']}?k=5", headers=headers, timeout=60)
    assert matches.status_code == 200, matches.text
    avoided = set(profile.json()["limits"]["effective_avoid_allergens"])
    for match in matches.json()["matches"]:
        assert match["reasons"]
        assert not avoided & set(match["product"].get("allergens") or [])
    # A second seed finds everything in place and adds nothing.
    again = seed(get_settings(), gateway, products=400, customers=3, say=messages.append)
    assert again.vendor_id == demo.vendor_id
    assert any(DEMO_SLUG in m and "already" in m for m in messages)
