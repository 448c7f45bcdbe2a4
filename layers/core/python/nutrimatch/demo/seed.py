"""Demo data through the public API: a vendor, its catalog uploaded and ingested, customers with profiles.

Everything goes over HTTP as a vendor's integration would (onboarding as a platform admin, a presigned
multipart upload followed to the end of its ingestion job, customers and their health profiles), so the demo
also proves the whole path works. Idempotent: a vendor that already has its catalog is left as it is.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nutrimatch.auth.tokens import mint_local_token
from nutrimatch.demo.catalog import write_products_csv
from nutrimatch.demo.customers import generate_customers, generate_health_profile
from nutrimatch.routes import Role
from nutrimatch.settings import Settings
from nutrimatch.uploads.client import Api, UploadError, follow_job, upload_file

DEMO_SLUG = "green-basket"
DEMO_NAME = "Green Basket Grocers"
DEMO_TOKEN_SECONDS = 12 * 3600


@dataclass(frozen=True)
class DemoVendor:
    vendor_id: str
    token: str
    products: int
    customers: int


def _token(settings: Settings, role: Role, vendor_id: str | None) -> str:
    return mint_local_token(settings, role=role, vendor_id=vendor_id, user_id=f"demo-{role.value}",
                            ttl_seconds=DEMO_TOKEN_SECONDS)


def _vendor(admin: Api) -> str:
    try:
        created = admin.json("POST", "/api/v1/vendors", json={"slug": DEMO_SLUG, "name": DEMO_NAME, "plan": "growth"})
        return str(created["id"])
    except UploadError as error:
        if error.status != 409:
            raise
    return next(str(v["id"]) for v in admin.json("GET", "/api/v1/vendors") if v["slug"] == DEMO_SLUG)


def seed(settings: Settings, api_url: str, *, products: int = 20_000, customers: int = 200,
         say: Callable[[str], None] = print) -> DemoVendor:
    vendor_id = _vendor(Api(api_url, _token(settings, Role.PLATFORM_ADMIN, None)))
    token = _token(settings, Role.VENDOR_ADMIN, vendor_id)
    api = Api(api_url, token)
    present = api.json("GET", "/api/v1/search/products?limit=1")
    if present.get("products"):
        say(f"demo vendor {DEMO_SLUG} already has its catalog")
    else:
        _load_catalog(api, products, say)
    listed = api.json("GET", "/api/v1/customers?limit=1")
    if not listed.get("items"):
        _add_customers(api, customers, say)
    return DemoVendor(vendor_id, token, products, customers)


def _load_catalog(api: Api, products: int, say: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "green-basket-catalog.csv"
        write_products_csv(path, products, bad_fraction=0.002)
        say(f"uploading a {products:,}-product catalog ({path.stat().st_size / 2**20:.1f} MiB) …")
        result = upload_file(api, path, kind="products", mode="upsert", state_dir=Path(directory) / "state")
    job = follow_job(api, result.job_id, lambda _: None, poll_seconds=0.5)
    counts: dict[str, Any] = (job or {}).get("counts", {})
    say(f"catalog ingested: {counts.get('inserted', 0):,} products live, {counts.get('rejected', 0)} rows "
        f"rejected with reasons (see the job's errors.csv)")


def _add_customers(api: Api, count: int, say: Callable[[str], None]) -> None:
    rng = random.Random(2026)  # noqa: S311 - demo data, not secrets
    for customer in generate_customers(count):
        created = api.json("POST", "/api/v1/customers", json={
            k: customer[k] for k in ("external_id", "name", "email", "locale")})
        api.call("PUT", f"/api/v1/customers/{created['id']}/health", json=generate_health_profile(rng))
    say(f"{count} customers with health profiles created")
