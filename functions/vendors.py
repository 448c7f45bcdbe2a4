"""Vendor onboarding and offboarding (platform admins; vendor admins may read their own vendor)."""

from uuid import UUID

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

from nutrimatch.api import create_app, current_caller, lambda_handler
from nutrimatch.db import get_database
from nutrimatch.errors import NotFound
from nutrimatch.tenancy import vendors
from nutrimatch.tenancy.vendors import NewVendor, Vendor

app = create_app()


@app.post("/api/v1/vendors", summary="Onboard a vendor: its record and its 16 + 32 partitions, atomically")
def onboard(new: NewVendor) -> Response[Vendor]:
    current_caller(app)
    vendor = vendors.onboard(get_database(), new)
    return Response(201, content_types.APPLICATION_JSON, vendor, headers={"Location": f"/api/v1/vendors/{vendor.id}"})


@app.get("/api/v1/vendors", summary="All vendors")
def list_vendors() -> list[Vendor]:
    current_caller(app)
    return vendors.list_all(get_database())


@app.get("/api/v1/vendors/<vendorId>", summary="One vendor")
def get_vendor(vendor_id: UUID = Path(alias="vendorId")) -> Vendor:
    caller = current_caller(app)
    if not caller.is_platform_admin and caller.vendor_id != vendor_id:
        raise NotFound("vendor not found")
    return vendors.get(get_database(), vendor_id, platform_admin=caller.is_platform_admin,
                       caller_vendor=caller.vendor_id)


@app.delete("/api/v1/vendors/<vendorId>", summary="Offboard a vendor (soft delete; purge removes its data)")
def offboard(vendor_id: UUID = Path(alias="vendorId")) -> Vendor:
    current_caller(app)
    return vendors.offboard(get_database(), vendor_id)


@app.post("/api/v1/vendors/<vendorId>/purge", summary="Drop an offboarded vendor's partitions and records")
def purge(vendor_id: UUID = Path(alias="vendorId")) -> Response[None]:
    current_caller(app)
    vendors.purge(get_database(), vendor_id)
    return Response(204)


handler = lambda_handler(app)
