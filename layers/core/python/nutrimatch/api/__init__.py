"""The HTTP adapter shared by every API function: resolver factory, error mapping, caller identity.

Handlers stay thin: they build their resolver here, declare routes with typed models and call the core once.
Domain errors become HTTP answers in this one place, by exception class — never by message text.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths

from nutrimatch import errors
from nutrimatch.routes import Role

# Requests that record no business metric are normal; Powertools would warn on each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service="nutrimatch")
metrics = Metrics(namespace="nutrimatch")

_STATUS: dict[type[errors.DomainError], HTTPStatus] = {
    errors.NotFound: HTTPStatus.NOT_FOUND,
    errors.Conflict: HTTPStatus.CONFLICT,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    errors.Unauthorized: HTTPStatus.UNAUTHORIZED,
    errors.InvalidInput: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.Gone: HTTPStatus.GONE,
    errors.RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
    errors.DependencyUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> Response[Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body,
                    headers=headers)


def status_for(error: errors.DomainError) -> HTTPStatus:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]  # type: ignore[index]
    return HTTPStatus.BAD_REQUEST


def create_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(errors.DomainError)
    def domain_error(error: errors.DomainError) -> Response[Any]:
        headers = error.headers if isinstance(error, errors.RateLimited) else None
        return error_response(status_for(error), error.code, error.message, error.details or None, headers)

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[Any]:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")),
             "location": (e.get("loc") or ["body"])[0], "message": e.get("msg"), "type": e.get("type")}
            for e in error.errors()
        ]
        names = ", ".join(d["field"] or d["location"] for d in details)
        return error_response(422, "validation_error", f"invalid request: {names}", details)

    return app


def lambda_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for a resolver: correlation id in every log line, metrics flushed."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the authorizer established it."""

    user_id: str
    role: Role
    vendor_id: UUID | None
    api_key_id: str | None = None

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN


def current_caller(app: APIGatewayRestResolver) -> Caller:
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    if "role" not in context:
        raise errors.Unauthorized("this route needs an authenticated caller")
    vendor = context.get("vendor_id") or None
    return Caller(user_id=str(context.get("user_id") or context.get("principalId")), role=Role(context["role"]),
                  vendor_id=UUID(vendor) if vendor else None, api_key_id=context.get("api_key_id") or None)
