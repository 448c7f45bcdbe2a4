"""Every declared route, walked with every role and across tenants, through the gateway and the authorizer."""

import pytest
import requests

from nutrimatch.routes import ROUTES, Role, functions
from tests.conftest import auth_header
from tests.e2e.samples import (
    body_for,
    build_world,
    concrete_path,
    declared_routes,
    offboarded_vendor,
    registered_routes,
)

PROTECTED = [r for r in ROUTES if not r.public]


@pytest.mark.parametrize("function", functions())
def test_every_served_route_is_declared_with_a_policy(function):
    """A handler that serves a route missing from the route table (so without roles) fails here."""
    assert registered_routes(function) == declared_routes(function)


def test_each_role_reaches_exactly_its_routes(gateway, two_vendors, redis_client):
    vendor_a, _ = two_vendors
    world = build_world(vendor_a)
    outcomes = []
    for route in PROTECTED:
        for role in Role:
            redis_client.flushdb()
            headers = auth_header(role, None if role is Role.PLATFORM_ADMIN else vendor_a.id)
            if role is Role.PLATFORM_ADMIN:
                headers["X-Vendor-Id"] = str(vendor_a.id)
                # Break-glass reads of PHI need a stated reason (tested in tests/e2e/test_health_http_profiles.py).
                headers["X-Access-Justification"] = "role-matrix walk"
            # Destructive routes act on a throwaway vendor so the walk can go on.
            destructive = route.method in ("DELETE", "POST") and "{vendorId}" in route.path
            target = build_world(offboarded_vendor()) if destructive else world
            response = requests.request(route.method, f"{gateway}{concrete_path(route, target)}",
                                        json=body_for(route), headers=headers, timeout=30)
            allowed = route.allows(role)
            ok = (response.status_code not in (401, 403)) if allowed else response.status_code == 403
            outcomes.append((route.method, route.path, role.value, allowed, response.status_code, ok))
    failures = [o for o in outcomes if not o[-1]]
    assert not failures, "\n".join(f"{m} {p} as {r}: allowed={a} got {s}" for m, p, r, a, s, _ in failures)


def test_vendor_a_finds_nothing_of_vendor_b_on_any_route(gateway, two_vendors, redis_client):
    vendor_a, vendor_b = two_vendors
    build_world(vendor_a)
    world_b = build_world(vendor_b)
    secrets_of_b = set(world_b.ids.values())
    leaks = []
    for route in PROTECTED:
        tenant_roles = [role for role in Role if role is not Role.PLATFORM_ADMIN and route.allows(role)]
        if not tenant_roles:
            continue  # only the platform reaches it: cross-tenant by design
        redis_client.flushdb()
        response = requests.request(route.method, f"{gateway}{concrete_path(route, world_b)}",
                                    json=body_for(route), headers=auth_header(tenant_roles[0], vendor_a.id),
                                    timeout=30)
        has_ids = bool(route.pattern.groupindex)
        if has_ids and response.status_code != 404:
            leaks.append(f"{route.method} {route.path}: {response.status_code} (expected 404)")
        if any(secret in response.text for secret in secrets_of_b):
            leaks.append(f"{route.method} {route.path}: response mentions vendor B's ids")
    assert not leaks, "\n".join(leaks)
