"""Customers' health profiles (PHI): encrypted at rest, every read and write audited."""

from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Path

from nutrimatch.api import create_app, current_caller, lambda_handler, request_info, tenant_transaction
from nutrimatch.customers import health
from nutrimatch.customers.health import HealthProfileWrite
from nutrimatch.health.store import StoredProfile

app = create_app()


@app.get("/api/v1/customers/<customerId>/health",
         summary="The profile, its derived limits and version (platform admins: X-Access-Justification)")
def read(customer_id: UUID = Path(alias="customerId")) -> StoredProfile:
    caller = current_caller(app)
    with tenant_transaction(caller) as conn:
        return health.read(conn, caller, request_info(app), customer_id)


@app.put("/api/v1/customers/<customerId>/health", summary="Write a new version of the profile")
def write(profile: HealthProfileWrite, customer_id: UUID = Path(alias="customerId")) -> StoredProfile:
    caller = current_caller(app)
    with tenant_transaction(caller) as conn:
        return health.write(conn, caller, request_info(app), customer_id, profile)


handler = lambda_handler(app)
