"""The route table: every API route, the Lambda function that serves it, and the roles allowed to call it.

Declared once and read by everything that needs it: the authorizer (which turns a caller's role into an IAM
policy over these routes), the local gateway (which dispatches by it), CDK (which builds API Gateway methods
from it) and the role-matrix test (which fails when a handler serves a route that is not declared here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    VENDOR_ADMIN = "vendor_admin"
    CATALOG_MANAGER = "catalog_manager"
    CLINICIAN = "clinician"
    ANALYST = "analyst"
    API_CLIENT = "api_client"


ALL_ROLES = frozenset(Role)

# Request bodies of these types reach handlers base64-encoded (API Gateway's binaryMediaTypes).
BINARY_MEDIA_TYPES = ("application/offset+octet-stream", "application/octet-stream")
# API Gateway refuses larger request payloads; the local gateway does the same.
MAX_REQUEST_BYTES = 10 * 1000 * 1000
PUBLIC: frozenset[Role] = frozenset()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway resource syntax: /api/v1/customers/{customerId}
    function: str  # module under functions/ whose `handler` serves it
    roles: frozenset[Role]
    public: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$")

    def allows(self, role: Role | str) -> bool:
        return self.public or role in self.roles


def _roles(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


PLATFORM = _roles(Role.PLATFORM_ADMIN)
ADMINS = _roles(Role.PLATFORM_ADMIN, Role.VENDOR_ADMIN)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/health", "status", PUBLIC, public=True),
    Route("GET", "/api/v1/openapi.json", "status", PUBLIC, public=True),
    Route("GET", "/api/v1/docs", "status", PUBLIC, public=True),
    # tenancy
    Route("POST", "/api/v1/vendors", "vendors", PLATFORM),
    Route("GET", "/api/v1/vendors", "vendors", PLATFORM),
    Route("GET", "/api/v1/vendors/{vendorId}", "vendors", ADMINS),
    Route("DELETE", "/api/v1/vendors/{vendorId}", "vendors", PLATFORM),
    Route("POST", "/api/v1/vendors/{vendorId}/purge", "vendors", PLATFORM),
    Route("POST", "/api/v1/api-keys", "api_keys", ADMINS),
    Route("GET", "/api/v1/api-keys", "api_keys", ADMINS),
    Route("DELETE", "/api/v1/api-keys/{keyId}", "api_keys", ADMINS),
    # --- uploads (issue 4) ---
    Route("POST", "/api/v1/ingest/csv", "uploads", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    Route("GET", "/api/v1/ingest/jobs/{jobId}/upload", "uploads", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    Route("POST", "/api/v1/ingest/jobs/{jobId}/upload/complete", "uploads", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    Route("DELETE", "/api/v1/ingest/jobs/{jobId}/upload", "uploads", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    # tus discovery carries no tenant data; browsers and tus clients may ask before they authenticate.
    Route("OPTIONS", "/api/v1/uploads/tus", "tus", PUBLIC, public=True),
    Route("POST", "/api/v1/uploads/tus", "tus", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    Route("HEAD", "/api/v1/uploads/tus/{uploadId}", "tus", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    Route("PATCH", "/api/v1/uploads/tus/{uploadId}", "tus", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    Route("DELETE", "/api/v1/uploads/tus/{uploadId}", "tus", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    # --- ingestion jobs (issue 5) ---
    Route("GET", "/api/v1/ingest/jobs", "ingest_jobs", _roles(*ADMINS, Role.CATALOG_MANAGER, Role.ANALYST)),
    Route("GET", "/api/v1/ingest/jobs/{jobId}", "ingest_jobs", _roles(*ADMINS, Role.CATALOG_MANAGER, Role.ANALYST)),
    Route("POST", "/api/v1/ingest/jobs/{jobId}/cancel", "ingest_jobs", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    Route("GET", "/api/v1/ingest/mappings", "ingest_jobs", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    Route("PUT", "/api/v1/ingest/mappings", "ingest_jobs", _roles(*ADMINS, Role.CATALOG_MANAGER)),
    # --- customers, health profiles, audit (issue 6) ---
    # Vendor apps (api_client) create and read their customers; only the care team changes them.
    Route("POST", "/api/v1/customers", "customers", ADMINS | _roles(Role.CLINICIAN, Role.API_CLIENT)),
    Route("GET", "/api/v1/customers", "customers", ADMINS | _roles(Role.CLINICIAN, Role.API_CLIENT, Role.ANALYST)),
    Route("GET", "/api/v1/customers/{customerId}", "customers",
          ADMINS | _roles(Role.CLINICIAN, Role.API_CLIENT, Role.ANALYST)),
    Route("PATCH", "/api/v1/customers/{customerId}", "customers", ADMINS | _roles(Role.CLINICIAN)),
    Route("DELETE", "/api/v1/customers/{customerId}", "customers", ADMINS | _roles(Role.CLINICIAN)),
    # PHI; platform admins' reads also need X-Access-Justification (checked by the core, recorded in the audit).
    Route("GET", "/api/v1/customers/{customerId}/health", "health_profiles", ADMINS | _roles(Role.CLINICIAN)),
    Route("PUT", "/api/v1/customers/{customerId}/health", "health_profiles", ADMINS | _roles(Role.CLINICIAN)),
    Route("GET", "/api/v1/audit", "audit", ADMINS),
    Route("GET", "/api/v1/audit/verify", "audit", ADMINS),
    # --- matching (issue 6) ---
    # Reads PHI (audited); platform admins also need X-Access-Justification, as for the profile itself.
    Route("GET", "/api/v1/matches/{customerId}", "matches",
          ADMINS | _roles(Role.CLINICIAN, Role.API_CLIENT)),
    # --- search (issue 7) ---
    Route("GET", "/api/v1/search/products", "search", ALL_ROLES),
    Route("GET", "/api/v1/products/{externalId}", "search", ALL_ROLES),
)


# Which function each queue feeds (the SQS event source mappings): settings attribute of the queue name → function.
QUEUE_CONSUMERS: dict[str, str] = {"ingest_queue": "ingest_starter"}


@dataclass(frozen=True)
class Schedule:
    handler: str
    """"module.function" under functions/."""
    every_hours: int


# Functions run on a timer (EventBridge rules in AWS, nutrimatch.local.scheduler locally): function name → schedule.
SCHEDULED: dict[str, Schedule] = {
    # tus uploads left unfinished past Upload-Expires: abort, delete their scratch tails, cancel their jobs.
    "tus-expiry": Schedule("tus.expire_handler", every_hours=1),
    # Jobs whose execution timed out or was stopped before MarkFailed: failed, their scratch tables dropped.
    "ingest-sweeper": Schedule("ingest_jobs.stalled_handler", every_hours=1),
}


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The declared route for a concrete request path, with its path parameters."""
    for route in ROUTES:
        if route.method != method.upper():
            continue
        match = route.pattern.match(path)
        if match:
            return route, match.groupdict()
    return None


def functions() -> list[str]:
    return sorted({route.function for route in ROUTES})
