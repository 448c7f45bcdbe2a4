"""API keys for machine clients: created by vendor admins, shown once, revocable."""

from uuid import UUID

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

from nutrimatch.api import create_app, current_caller, lambda_handler
from nutrimatch.auth import api_keys
from nutrimatch.auth.api_keys import ApiKey, CreatedApiKey, NewApiKey
from nutrimatch.db import get_database

app = create_app()


@app.post("/api/v1/api-keys", summary="Create an API key; the secret is in this response only")
def create(new: NewApiKey) -> Response[CreatedApiKey]:
    caller = current_caller(app)
    created = api_keys.create(get_database(), caller.require_vendor(), new, caller.user_id)
    return Response(201, content_types.APPLICATION_JSON, created)


@app.get("/api/v1/api-keys", summary="The vendor's API keys (never their secrets)")
def list_keys() -> list[ApiKey]:
    caller = current_caller(app)
    return api_keys.list_keys(get_database(), caller.require_vendor())


@app.delete("/api/v1/api-keys/<keyId>", summary="Revoke an API key")
def revoke(key_id: UUID = Path(alias="keyId")) -> ApiKey:
    caller = current_caller(app)
    return api_keys.revoke(get_database(), caller.require_vendor(), key_id)


handler = lambda_handler(app)
