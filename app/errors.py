"""Domain errors raised by services; one set of handlers turns them into pages, fragments or JSON."""

from __future__ import annotations


class DomainError(Exception):
    """An expected refusal with a message fit to show the user."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class BadRequest(DomainError):
    status, code = 400, "bad_request"


class Unauthenticated(DomainError):
    status, code = 401, "unauthorized"


class NotAllowed(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class InvalidTransition(DomainError):
    status, code = 409, "invalid_transition"


class ValidationFailed(DomainError):
    status, code = 422, "invalid_fields"


class TooManyRequests(DomainError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    status, code = 503, "unavailable"
