"""The HTTP adapter shared by every API function: resolver factory, error mapping, caller identity.

Handlers stay thin: they build their resolver here, declare routes with typed models and call the core once.
Domain errors become HTTP answers in this one place, by exception class — never by message text.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from uuid import UUID

import redis
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from nutrimatch import errors
from nutrimatch.audit.context import RequestInfo
from nutrimatch.cache import redis_client
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.routes import Role, find_route
from nutrimatch.settings import get_settings
from nutrimatch.tenancy.ratelimit import RateLimiter

# Requests that record no business metric are normal; Powertools would warn on each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# Powertools' resolver logs handler arguments and botocore logs KMS plaintext at DEBUG: PHI and key material
# must never reach the logs, whatever LOG_LEVEL says.
for _chatty in ("aws_lambda_powertools", "botocore", "urllib3"):
    logging.getLogger(_chatty).setLevel(logging.INFO)

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


def _authorizer_context(app: APIGatewayRestResolver) -> dict[str, Any]:
    context: dict[str, Any] = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    return context


def rate_limit(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Spend a token from the vendor's bucket (and the API key's); 429 with Retry-After when empty."""
    context = _authorizer_context(app)
    if not context.get("vendor_id") or not context.get("rate_limit_per_second"):
        return next_middleware(app)
    buckets = [f"vendor:{context['vendor_id']}"]
    if context.get("api_key_id"):
        buckets.append(f"key:{context['api_key_id']}")
    try:
        limiter = RateLimiter(redis_client(get_settings().redis_url))
        decision = limiter.take_all(buckets, int(context["rate_limit_per_second"]), int(context["rate_limit_burst"]))
    except redis.RedisError:
        # Limits protect the service; an unreachable Redis must not take the API down with it.
        logger.warning("rate limiter unavailable; request let through")
        return next_middleware(app)
    if not decision.allowed:
        metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
        return error_response(429, "rate_limited", "rate limit exceeded; retry after the given delay",
                              {"retry_after_seconds": decision.retry_after_seconds}, decision.headers())
    response = next_middleware(app)
    response.headers.update(decision.headers())
    return response


# A JSON string's escaped NUL (\u0000 not itself escaped as \\u0000).
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def refuse_nul(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """422 for a NUL character in a path or query parameter or a JSON body: PostgreSQL text cannot hold one, so
    it would otherwise fail deep in a handler as a server error."""
    event = app.current_event
    parameters = [("path", name, value) for name, value in (event.path_parameters or {}).items()]
    parameters += [("query", name, value) for name, values in
                   (event.multi_value_query_string_parameters or {}).items() for value in values]
    places = [(location, name) for location, name, value in parameters if "\x00" in value]
    if not event.is_base64_encoded and event.body and _JSON_NUL.search(event.body):
        places.append(("body", ""))
    if not places:
        return next_middleware(app)
    details = [{"field": name, "location": location, "message": "must not contain NUL characters",
                "type": "nul_character"} for location, name in places]
    return error_response(422, "validation_error",
                          f"invalid request: {', '.join(name or location for location, name in places)}", details)


def create_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    app.use(middlewares=[refuse_nul, rate_limit])

    @app.exception_handler(errors.DomainError)
    def domain_error(error: errors.DomainError) -> Response[Any]:
        return error_response(status_for(error), error.code, error.message, error.details or None)

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[Any]:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")),
             "location": (e.get("loc") or ["body"])[0], "message": _reason(e.get("msg")), "type": e.get("type")}
            for e in error.errors()
        ]
        names = ", ".join(d["field"] or d["location"] for d in details)
        return error_response(422, "validation_error", f"invalid request: {names}", details)

    return app


def _reason(message: str | None) -> str | None:
    # pydantic prefixes what a validator raises with the exception's kind, which tells a caller nothing.
    return message.removeprefix("Value error, ") if message else message


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


    def require_vendor(self) -> UUID:
        if self.vendor_id is None:
            raise errors.InvalidInput("this route acts on one vendor: platform admins name it with X-Vendor-Id")
        return self.vendor_id


def current_caller(app: APIGatewayRestResolver) -> Caller:
    """The authenticated caller; checks the route table again so a misconfigured gateway cannot widen access."""
    event = app.current_event
    context = _authorizer_context(app)
    if "role" not in context:
        raise errors.Unauthorized("this route needs an authenticated caller")
    role = Role(context["role"])
    found = find_route(event.http_method, event.path)
    if found is None or not found[0].allows(role):
        raise errors.Forbidden("your role may not call this route")
    vendor = context.get("vendor_id") or None
    if role is Role.PLATFORM_ADMIN:
        vendor = event.headers.get("x-vendor-id") or event.headers.get("X-Vendor-Id") or vendor
    try:
        vendor_id = UUID(vendor) if vendor else None
    except ValueError as error:
        raise errors.InvalidInput("X-Vendor-Id must be a vendor id (UUID)") from error
    return Caller(user_id=str(context.get("user_id") or context.get("principalId")), role=role,
                  vendor_id=vendor_id, api_key_id=context.get("api_key_id") or None)


def request_info(app: APIGatewayRestResolver) -> RequestInfo:
    """The request facts an audit row records (X-Access-Justification is the break-glass reason)."""
    event = app.current_event
    identity = event.request_context.identity
    return RequestInfo(request_id=event.request_context.request_id, ip=identity.source_ip,
                       user_agent=identity.user_agent, justification=event.headers.get("x-access-justification")
                       or event.headers.get("X-Access-Justification"))


def tenant_transaction(caller: Caller, *, read_only: bool = False) -> Any:
    """A writer transaction scoped (and row-level secured) to the caller's vendor."""
    return scoped_transaction(get_database().writer, caller.require_vendor(), read_only=read_only)
