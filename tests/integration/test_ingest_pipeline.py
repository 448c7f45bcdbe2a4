"""The ingestion pipeline end to end on small files: the real ASL run locally, real PG, real S3 (moto)."""

from decimal import Decimal

from tests.integration.ingest_support import ingest, products_of

HEADER = "SKU,Product Name,Brand,Kcal,Protein (g),Sodium (mg),Allergens,Dietary Tags,Price\n"


def test_a_clean_file_becomes_live_products(two_vendors, aws_resources):
    vendor, _ = two_vendors
    body = HEADER + "A-1,Greek Yogurt,Alpine,120,15,65,Milk,vegetarian;gluten free,2.49\n" \
                    "A-2,Rye Bread,Nordic,80,3,180,wheat;gluten,vegan,3.10\n"
    job = ingest(vendor.id, body.encode())
    assert job["status"] == "completed", job["error"]
    assert job["counts"]["inserted"] == 2 and job["counts"]["rejected"] == 0
    products = products_of(vendor.id)
    assert products["A-1"]["calories"] == Decimal("120.00")
    assert products["A-1"]["allergens"] == ["milk"]
    assert products["A-1"]["dietary_tags"] == ["gluten_free", "vegetarian"]
    assert products["A-2"]["allergens"] == ["gluten", "wheat"]
    assert job["mapping"]["columns"][0]["field"] == "external_id"
