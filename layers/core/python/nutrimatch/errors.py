"""Domain errors. The HTTP adapter maps each class to a status code in one place (nutrimatch.api.errors)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the core raises on purpose; `code` is machine-readable, `message` for humans."""

    code = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Forbidden(DomainError):
    code = "forbidden"


class Unauthorized(DomainError):
    code = "unauthorized"


class InvalidInput(DomainError):
    code = "invalid_input"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class Gone(DomainError):
    code = "gone"


class DependencyUnavailable(DomainError):
    code = "dependency_unavailable"
