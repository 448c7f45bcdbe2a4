"""Search and product lookup over HTTP: gateway, authorizer, handler, replica."""

import base64
import json
import uuid

import requests

from nutrimatch.routes import Role
from tests.conftest import auth_header
from tests.e2e.search_samples import insert_products, wait_for_replica

PRODUCTS = [
    {"external_id": "gy-1", "name": "Greek Yogurt Plain", "brand": "Valley Creamery", "category": "Dairy",
     "price": 5.49, "protein_g": 18, "dietary_tags": ["vegetarian", "high_protein"], "allergens": ["milk"]},
    {"external_id": "gy-2", "name": "Greek Yogurt Honey", "brand": "Valley Creamery", "category": "Dairy",
     "price": 5.99, "protein_g": 15, "dietary_tags": ["vegetarian"], "allergens": ["milk"]},
    {"external_id": "oy-1", "name": "Oat Yogurt", "brand": "Oatly Farms", "category": "Dairy Alternatives",
     "price": 4.99, "protein_g": 3, "dietary_tags": ["vegan"], "allergens": []},
]

# A relevance cursor whose score no `real` holds (1e39).
FORGED_RELEVANCE_CURSOR = base64.urlsafe_b64encode(
    json.dumps({"s": "relevance", "k": 1e39, "i": str(uuid.UUID(int=0))}).encode()).decode()


def _catalog(two_vendors):
    vendor_a, vendor_b = two_vendors
    insert_products(vendor_a.id, PRODUCTS)
    insert_products(vendor_b.id, [{"external_id": "gy-1", "name": "Yogurt of vendor B"}])
    wait_for_replica()
    return vendor_a, vendor_b


def test_an_api_client_searches_with_filters_facets_and_pages(gateway, two_vendors, redis_client):
    vendor, _ = _catalog(two_vendors)
    url = f"{gateway}/api/v1/search/products"
    headers = auth_header(Role.API_CLIENT, vendor.id)
    query = {"q": "yogu", "diet": "vegetarian", "sort": "price_desc", "limit": 2}  # vegan is vegetarian too
    first = requests.get(url, params={**query, "facets": "category,diet_tags"}, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    body = first.json()
    assert first.headers["X-Data-Freshness"] == body["freshness"] == "fresh"
    assert body["served_by"] == "replica"
    assert [p["external_id"] for p in body["products"]] == ["gy-2", "gy-1"]
    assert body["facets"]["category"] == [{"value": "Dairy", "count": 2}, {"value": "Dairy Alternatives", "count": 1}]
    second = requests.get(url, params={**query, "cursor": body["next_cursor"]}, headers=headers, timeout=30).json()
    assert [p["external_id"] for p in second["products"]] == ["oy-1"] and second["next_cursor"] is None


def test_bad_parameters_are_refused_naming_the_field(gateway, two_vendors, redis_client):
    vendor, _ = _catalog(two_vendors)
    headers = auth_header(Role.ANALYST, vendor.id)
    for params, field in [({"limit": 101}, "limit"), ({"diet": "carnivore"}, "diet"),
                          ({"protein_g_min": "lots"}, "protein_g_min"), ({"sort": "relevance"}, "sort"),
                          ({"price_min": 9, "price_max": 1}, "price_min"), ({"cursor": "nope"}, "cursor"),
                          ({"q": "yogurt", "cursor": FORGED_RELEVANCE_CURSOR}, "cursor")]:
        response = requests.get(f"{gateway}/api/v1/search/products", params=params, headers=headers, timeout=30)
        assert response.status_code == 422, (params, response.text)
        error = response.json()["error"]
        fields = [d["field"] for d in error["details"]] if isinstance(error["details"], list) \
            else [error["details"]["field"]]
        assert fields == [field], error


def test_a_product_by_external_id_and_tenant_isolation(gateway, two_vendors, redis_client):
    vendor_a, vendor_b = _catalog(two_vendors)
    as_a = auth_header(Role.CATALOG_MANAGER, vendor_a.id)
    found = requests.get(f"{gateway}/api/v1/products/gy-1", headers=as_a, timeout=30)
    assert found.status_code == 200, found.text
    assert found.json()["product"]["name"] == "Greek Yogurt Plain"
    assert found.headers["X-Data-Freshness"] in ("fresh", "stale")
    strong = requests.get(f"{gateway}/api/v1/products/gy-1", params={"consistency": "strong"}, headers=as_a,
                          timeout=30)
    assert strong.headers["X-Data-Freshness"] == "primary" and strong.json()["served_by"] == "primary"
    assert requests.get(f"{gateway}/api/v1/products/oy-1", headers=auth_header(Role.API_CLIENT, vendor_b.id),
                        timeout=30).status_code == 404
    admin = {**auth_header(Role.PLATFORM_ADMIN), "X-Vendor-Id": str(vendor_b.id)}
    seen_by_b = requests.get(f"{gateway}/api/v1/search/products", params={"q": "yogurt"}, headers=admin,
                             timeout=30).json()
    assert [p["name"] for p in seen_by_b["products"]] == ["Yogurt of vendor B"]
