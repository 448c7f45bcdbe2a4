"""Matching over HTTP through the local gateway: a profile written by a clinician, products of the vendor, the
ranked answer with reasons, the cache, filters, 409/422s, break-glass, no PHI in any log line."""

import logging
from decimal import Decimal

import psycopg
import requests

from nutrimatch.routes import Role
from tests.conftest import auth_header

PROFILE = {"height_cm": 165, "weight_kg": 88, "age": 61, "sex": "male", "activity_level": "sedentary",
           "conditions": ["hypertension", "chronic_kidney_disease"], "avoid_allergens": ["sesame", "wheat"],
           "diet_goals": ["vegetarian"], "notes": "Lives alone"}
PHI_MARKERS = ("hypertension", "kidney", "sesame", "Lives alone", "vegetarian")
_INSERT = """
INSERT INTO products (id, vendor_id, external_id, name, category, price, serving_size_g, calories, protein_g,
                      carbs_g, saturated_fat_g, fiber_g, sugar_g, sodium_mg, potassium_mg, allergens, dietary_tags)
VALUES (entity_uuid(%s, %s), %s, %s, %s, %s, %s, 30, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def products(vendor_id: object) -> list[tuple[object, ...]]:
    """name → (category, price, calories, protein, carbs, saturated fat, fiber, sugar, sodium, potassium,
    allergens, tags): a low-sodium, high-fiber lentil salad should win for this person."""
    table = {
        "Lentil salad": ("deli", "6.49", 180, 12, 20, 0.5, 8, 2, 120, 300, [], ["vegan"]),
        "Salted crackers": ("snacks", "2.99", 140, 3, 22, 1, 1, 1, 420, 60, [], ["vegan"]),
        "Sesame bar": ("snacks", "1.99", 150, 4, 18, 2, 2, 9, 40, 100, ["sesame"], ["vegan"]),
        "Wheat bread": ("bakery", "3.49", 160, 6, 30, 0.5, 4, 3, 250, 110, ["wheat"], ["vegan"]),
        "Ham sandwich": ("deli", "5.99", 350, 18, 35, 4, 2, 4, 1100, 400, ["milk"], []),
        "Greek yogurt": ("dairy", "1.49", 100, 15, 6, 0, 0, 5, 55, 200, ["milk"], ["vegetarian"]),
        "Mystery mix": ("snacks", "0.99", 100, 2, 15, 0, 3, 1, 10, 50, None, ["vegan"]),
    }
    return [(vendor_id, name, vendor_id, name, name, category, Decimal(price), *numbers)
            for name, (category, price, *numbers) in table.items()]


def _customer_with_profile(gateway: str, vendor_id: object, profile: dict[str, object] | None) -> str:
    clinician = auth_header(Role.CLINICIAN, vendor_id, user_id="dr-lee")
    created = requests.post(f"{gateway}/api/v1/customers", json={"external_id": f"pt-{profile is None}"},
                            headers=clinician, timeout=30)
    assert created.status_code == 201, created.text
    customer_id = str(created.json()["id"])
    if profile is not None:
        written = requests.put(f"{gateway}/api/v1/customers/{customer_id}/health", json=profile, headers=clinician,
                               timeout=30)
        assert written.status_code == 200, written.text
    return customer_id


def test_matching_over_http(gateway, database, two_vendors, redis_client, caplog, capfd):
    vendor, _ = two_vendors
    caplog.set_level(logging.DEBUG)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.cursor().executemany(_INSERT, products(vendor.id))
        conn.execute("UPDATE vendors SET catalog_version = 1 WHERE id = %s", (vendor.id,))
    customer_id = _customer_with_profile(gateway, vendor.id, PROFILE)
    app = auth_header(Role.API_CLIENT, vendor.id)
    url = f"{gateway}/api/v1/matches/{customer_id}"

    first = requests.get(url, params={"k": 5}, headers=app, timeout=30)
    assert first.status_code == 200, first.text
    body = first.json()
    names = [match["product"]["name"] for match in body["matches"]]
    # Sesame and wheat are avoided, the ham is not vegetarian, unknown allergens are refused by default.
    assert names[0] == "Lentil salad" and set(names) == {"Lentil salad", "Salted crackers", "Greek yogurt"}
    scores = [match["health_score"] for match in body["matches"]]
    assert scores == sorted(scores, reverse=True)
    lentils = body["matches"][0]
    assert "Low sodium: 120 mg per serving ≤ 140 mg (27% of the 450 mg meal budget for chronic kidney disease, " \
           "hypertension)" in lentils["reasons"]
    assert "High fiber: 8 g per serving ≥ 5.6 g" in lentils["reasons"]
    assert lentils["product"]["nutrients_per_serving"]["sodium_mg"] == 120
    assert lentils["flags"] == ["added_sugar_estimated_from_sugar"]
    assert body["health_constraints_applied"] == ["chronic_kidney_disease", "hypertension"]
    assert body["allergen_exclusions"] == ["sesame", "wheat"]
    assert (body["eligible_count"], body["catalog_version"], body["profile_version"], body["cached"]) == (
        3, 1, 1, False)

    cached = requests.get(url, params={"k": 5}, headers=app, timeout=30).json()
    assert cached["cached"] and cached["matches"] == body["matches"]

    filtered = requests.get(url, params={"k": 5, "category": "dairy", "max_price": "1.49"}, headers=app,
                            timeout=30).json()
    assert [m["product"]["name"] for m in filtered["matches"]] == ["Greek yogurt"]
    assert filtered["eligible_count"] == 1

    too_many = requests.get(url, params={"k": 101}, headers=app, timeout=30)
    assert too_many.status_code == 422 and too_many.json()["error"]["details"][0]["field"] == "k"
    too_dear = requests.get(url, params={"max_price": "1e1000000"}, headers=app, timeout=30)
    assert too_dear.status_code == 422 and too_dear.json()["error"]["details"][0]["field"] == "max_price"

    no_profile = requests.get(f"{gateway}/api/v1/matches/{_customer_with_profile(gateway, vendor.id, None)}",
                              headers=app, timeout=30)
    assert no_profile.status_code == 409 and no_profile.json()["error"]["code"] == "health_profile_missing"

    platform = {**auth_header(Role.PLATFORM_ADMIN), "X-Vendor-Id": str(vendor.id)}
    refused = requests.get(url, headers=platform, timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "justification_required"
    justified = requests.get(url, headers={**platform, "X-Access-Justification": "incident 42"}, timeout=30)
    assert justified.status_code == 200, justified.text

    trail = requests.get(f"{gateway}/api/v1/audit", params={"entity_id": customer_id},
                         headers=auth_header(Role.VENDOR_ADMIN, vendor.id), timeout=30).json()["items"]
    matched = [row for row in trail if row["action"] == "health_profile.matched"]
    assert len(matched) == 4  # two plain, the filtered one, the justified platform admin's; the 422s never ran
    assert matched[0]["justification"] == "incident 42" and matched[0]["actor_role"] == "platform_admin"

    logged = caplog.text + "".join(capfd.readouterr())
    assert not [marker for marker in PHI_MARKERS if marker in logged]
