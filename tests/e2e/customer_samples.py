"""Customers with health profiles for route walking and e2e tests, written through the core as a clinician."""

from __future__ import annotations

import uuid
from typing import Any

from nutrimatch.api import Caller
from nutrimatch.audit import RequestInfo
from nutrimatch.customers import health, records
from nutrimatch.customers.records import NewCustomer
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.health import HealthProfile
from nutrimatch.routes import Role
from nutrimatch.tenancy.vendors import Vendor

SAMPLE_PROFILE: dict[str, Any] = {
    "height_cm": 170, "weight_kg": 72, "age": 44, "sex": "female", "activity_level": "light",
    "conditions": ["hypertension", "diabetes_type_2"], "avoid_allergens": ["peanuts"], "diet_goals": ["halal"],
    "notes": "sample note",
}


def sample_customer(vendor: Vendor) -> str:
    """A new customer of `vendor` with SAMPLE_PROFILE as its health profile; returns its id."""
    clinician = Caller(user_id="sampler", role=Role.CLINICIAN, vendor_id=vendor.id)
    request = RequestInfo(request_id=f"sample-{uuid.uuid4()}", ip=None, user_agent="samples", justification=None)
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        customer = records.create(conn, clinician, request, NewCustomer(external_id=f"sample-{uuid.uuid4().hex}"))
        health.write(conn, clinician, request, customer.id, HealthProfile.model_validate(SAMPLE_PROFILE))
    return str(customer.id)
