"""API errors rendered in OpenAI's error envelope."""

from __future__ import annotations

import math
from typing import Any

#: Error ``type`` and ``code`` OpenAI-style services use for common statuses.
_STATUS_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", "invalid_request", "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Invalid authentication."),
    403: ("invalid_request_error", "forbidden", "Forbidden."),
    404: ("invalid_request_error", "not_found", "Not found."),
    408: ("timeout", "timeout", "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", "internal_error", "The server had an error while processing your request."),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: (
        "server_error",
        "service_unavailable",
        "The engine is currently overloaded, please try again later.",
    ),
    504: ("server_error", "gateway_timeout", "Gateway timeout."),
}


class ApiError(Exception):
    """An error the simulator answers with, as OpenAI would.

    Attributes:
        status: HTTP status code.
        message: Human-readable message.
        type: OpenAI error type (``invalid_request_error``, ``server_error`` ...).
        param: The offending request parameter, if any.
        code: Machine-readable error code, if any.
        headers: Extra response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        default_type, default_code, _ = _STATUS_DEFAULTS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, "")
        )
        self.status = status
        self.message = message
        self.type = type or default_type
        self.param = param
        self.code = code if code is not None else default_code
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        """The JSON body: ``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def for_status(status: int, message: str | None = None) -> ApiError:
    """Build the typical error for an HTTP status (used by injected faults).

    Args:
        status: HTTP status code.
        message: Override for the default message.
    """
    if status == 429:
        return rate_limited(1.0)
    _, _, default_message = _STATUS_DEFAULTS.get(status, ("", None, f"Simulated HTTP {status} error."))
    return ApiError(status, message or default_message)


def rate_limited(retry_after: float) -> ApiError:
    """A 429 carrying both ``Retry-After`` (whole seconds) and ``retry-after-ms``.

    Args:
        retry_after: Seconds the client should wait.
    """
    retry_after = max(0.0, retry_after)
    headers = {"Retry-After": str(math.ceil(retry_after)), "retry-after-ms": str(round(retry_after * 1000))}
    return ApiError(
        429,
        "Rate limit reached for requests. Please try again later.",
        type="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


def invalid(message: str, *, param: str | None = None, code: str = "invalid_value") -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, type="invalid_request_error", param=param, code=code)


def not_found(message: str) -> ApiError:
    """A 404 ``invalid_request_error``."""
    return ApiError(404, message, type="invalid_request_error", code="not_found")
