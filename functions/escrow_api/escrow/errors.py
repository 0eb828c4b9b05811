"""Errors that become HTTP answers. Each carries its status, a stable code and the field at fault.

The handler catches ``ApiError`` at the edge and answers with ``error_body()``;
any other exception propagates so Lambda reports it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    """Base: an answer the client should see, ``{"error": {"code", "message", ...}}``."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_request"

    def __init__(
        self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        self.message = message
        self.field = field
        self.extra = extra or {}
        super().__init__(message)

    def error_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        error.update(self.extra)
        return {"error": error}


class BadRequestError(ApiError):
    status = 400
    code = "invalid_request"


class UnauthorizedError(ApiError):
    status = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    status = 403
    code = "forbidden"


class NotFoundError(ApiError):
    status = 404
    code = "not_found"


class InvalidStateError(ApiError):
    """409: the action is not allowed in the escrow's current state (which is returned)."""

    status = 409
    code = "invalid_state"

    def __init__(self, message: str, *, current_state: str) -> None:
        super().__init__(message, extra={"currentState": current_state})
        self.current_state = current_state


class RequestInProgressError(ApiError):
    """409: a request with the same Idempotency-Key is still being processed."""

    status = 409
    code = "request_in_progress"


class AuthorizationExpiredError(InvalidStateError):
    """409: the card authorisation lapsed at Stripe; the payment can no longer be captured."""

    code = "authorization_expired"


class PayloadTooLargeError(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    """415: the body is not ``application/json``; nothing was read or written."""

    status = 415
    code = "unsupported_media_type"


class IdempotencyKeyReusedError(ApiError):
    """422: the Idempotency-Key was used before with a different request."""

    status = 422
    code = "idempotency_key_reused"


class PaymentProviderError(ApiError):
    """502: Stripe failed or refused; the escrow is unchanged."""

    status = 502
    code = "payment_provider_error"


class RetryLaterError(ApiError):
    """503: not now (an escrow with a Stripe call in flight); Stripe delivers the event again."""

    status = 503
    code = "retry_later"
