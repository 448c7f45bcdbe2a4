"""A vendor's customers: create, read, update, list and delete."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from nutrimatch.api import create_app, current_caller, lambda_handler, request_info, tenant_transaction
from nutrimatch.customers import records
from nutrimatch.customers.records import Customer, CustomerChanges, CustomerPage, CustomerQuery, NewCustomer

app = create_app()


@app.post("/api/v1/customers", summary="Create a customer (id derived from the vendor's external_id)")
def create(new: NewCustomer) -> Response[Customer]:
    caller = current_caller(app)
    with tenant_transaction(caller) as conn:
        customer = records.create(conn, caller, request_info(app), new)
    return Response(201, content_types.APPLICATION_JSON, customer,
                    headers={"Location": f"/api/v1/customers/{customer.id}"})


@app.get("/api/v1/customers", summary="The vendor's customers in keyset pages")
def list_customers(query: Annotated[CustomerQuery, Query()]) -> CustomerPage:
    caller = current_caller(app)
    with tenant_transaction(caller, read_only=True) as conn:
        return records.list_page(conn, caller, query)


@app.get("/api/v1/customers/<customerId>", summary="One customer")
def get(customer_id: UUID = Path(alias="customerId")) -> Customer:
    caller = current_caller(app)
    with tenant_transaction(caller, read_only=True) as conn:
        return records.get(conn, caller, customer_id)


@app.patch("/api/v1/customers/<customerId>", summary="Change a customer's name, email, locale or status")
def update(changes: CustomerChanges, customer_id: UUID = Path(alias="customerId")) -> Customer:
    caller = current_caller(app)
    with tenant_transaction(caller) as conn:
        return records.update(conn, caller, request_info(app), customer_id, changes)


@app.delete("/api/v1/customers/<customerId>",
            summary="Delete a customer: name, email and health profile erased; the audit trail kept")
def delete(customer_id: UUID = Path(alias="customerId")) -> Response[None]:
    caller = current_caller(app)
    with tenant_transaction(caller) as conn:
        records.delete(conn, caller, request_info(app), customer_id)
    return Response(204)


handler = lambda_handler(app)
