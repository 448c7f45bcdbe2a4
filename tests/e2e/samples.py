"""Sample path parameters and bodies for walking every declared route (role matrix, tenant isolation).

A route added to nutrimatch.routes with a path parameter or a body this file does not know makes the walking
tests fail until a sample is added here — so no route escapes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nutrimatch.api.modules import import_function_module
from nutrimatch.auth import api_keys
from nutrimatch.auth.api_keys import NewApiKey
from nutrimatch.db import get_database
from nutrimatch.local.lambdas import FUNCTIONS_DIR
from nutrimatch.routes import ROUTES, Route
from nutrimatch.tenancy import vendors
from nutrimatch.tenancy.vendors import NewVendor, Vendor
from nutrimatch.uploads import UploadContext, multipart, tus
from nutrimatch.uploads.multipart import NewCsvUpload
from tests.e2e.customer_samples import SAMPLE_PROFILE, sample_customer
from tests.e2e.search_samples import sample_product

# Request bodies that pass validation, so that what is tested is access, not input checking.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/vendors"): lambda: {"slug": f"walk-{uuid.uuid4().hex[:8]}", "name": "Walk"},
    ("POST", "/api/v1/api-keys"): lambda: {"name": "walk", "role": "api_client"},
    ("POST", "/api/v1/vendors/{vendorId}/purge"): lambda: None,
    # --- uploads (issue 4) ---
    ("POST", "/api/v1/ingest/csv"): lambda: {"kind": "products", "file_name": "walk.csv", "size_bytes": 1024},
    ("POST", "/api/v1/ingest/jobs/{jobId}/upload/complete"): lambda: {"parts": [{"part_number": 1, "etag": '"0"'}]},
    ("POST", "/api/v1/uploads/tus"): lambda: None,
    ("PATCH", "/api/v1/uploads/tus/{uploadId}"): lambda: None,
    # --- ingestion jobs (issue 5) ---
    ("POST", "/api/v1/ingest/jobs/{jobId}/cancel"): lambda: None,
    ("PUT", "/api/v1/ingest/mappings"): lambda: {"kind": "products",
                                                 "mappings": [{"header": "Kcal", "field": "calories"}]},
    # --- customers, health profiles, audit (issue 6) ---
    ("POST", "/api/v1/customers"): lambda: {"external_id": f"walk-{uuid.uuid4().hex[:8]}", "name": "Walk",
                                            "email": "walk@example.com"},
    ("PATCH", "/api/v1/customers/{customerId}"): lambda: {"name": "Walked"},
    ("PUT", "/api/v1/customers/{customerId}/health"): lambda: dict(SAMPLE_PROFILE),
    # --- matching (issue 6) ---
    # --- search (issue 7) ---
}

# Path parameter name → how to make one such thing owned by the given vendor (returns its id as text).
ID_FACTORIES: dict[str, Callable[[Vendor], str]] = {
    "vendorId": lambda vendor: str(vendor.id),
    "keyId": lambda vendor: str(
        api_keys.create(get_database(), vendor.id, NewApiKey(name="sample", role="api_client"), "sampler").id),
    # --- uploads (issue 4) ---
    "jobId": lambda vendor: str(multipart.start(
        UploadContext.current(), vendor.id, NewCsvUpload(kind="products", file_name="sample.csv", size_bytes=1024),
        "sampler").job.id),
    "uploadId": lambda vendor: str(tus.create(
        UploadContext.current(), vendor.id, "sampler",
        {"tus-resumable": "1.0.0", "upload-length": "1024", "upload-metadata": "kind cHJvZHVjdHM=,filename YS5jc3Y="},
        b"").id),
    # --- ingestion jobs (issue 5) ---
    # --- customers, health profiles, audit (issue 6) ---
    "customerId": sample_customer,
    # --- matching (issue 6) ---
    # --- search (issue 7) ---
    "externalId": sample_product,
}


@dataclass
class VendorWorld:
    """One vendor and an id of each kind of thing it owns, for substituting into paths."""

    vendor: Vendor
    ids: dict[str, str] = field(default_factory=dict)


def build_world(vendor: Vendor) -> VendorWorld:
    return VendorWorld(vendor, {name: make(vendor) for name, make in ID_FACTORIES.items()})


def offboarded_vendor() -> Vendor:
    """A throwaway vendor, already offboarded, for routes that delete or purge."""
    db = get_database()
    vendor = vendors.onboard(db, NewVendor(slug=f"tmp-{uuid.uuid4().hex[:8]}", name="Temporary"))
    return vendors.offboard(db, vendor.id)


def concrete_path(route: Route, world: VendorWorld) -> str:
    path = route.path
    for name in route.pattern.groupindex:
        if name not in world.ids:
            raise AssertionError(f"no sample id for path parameter {{{name}}} of {route.method} {route.path}: "
                                 "add one in tests/e2e/samples.py")
        path = path.replace(f"{{{name}}}", world.ids[name])
    return path


def body_for(route: Route) -> Any:
    if route.method in ("GET", "DELETE", "HEAD", "OPTIONS"):
        return None
    maker = BODIES.get((route.method, route.path))
    if maker is None:
        raise AssertionError(f"no sample body for {route.method} {route.path}: add one in tests/e2e/samples.py")
    return maker()


def registered_routes(function: str) -> set[tuple[str, str]]:
    """What a function's resolver actually serves, in route-table syntax."""
    app = import_function_module(FUNCTIONS_DIR, function).app
    served = set()
    for route in app._static_routes + app._dynamic_routes:
        served.add((route.method, route.path.replace("<", "{").replace(">", "}")))
    return served


def declared_routes(function: str) -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in ROUTES if r.function == function}
