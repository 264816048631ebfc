"""Errors in the Videos protocol's envelope: ``{"error": {"message", "type", "param", "code"}}``.

Every answer that is not a success leaves through here, including FastAPI's own request validation
errors and the 404/405 of unknown routes, so any OpenAI client raises its usual exception classes.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

# The ``type`` and ``code`` OpenAI-style services use for a status when nothing more specific applies.
_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    416: ("invalid_request_error", "range_not_satisfiable"),
    500: ("server_error", "internal_error"),
    503: ("server_error", "service_unavailable"),
}


class ApiError(Exception):
    """An error answer.

    Attributes:
        status: HTTP status code.
        message: For people; never contains a key or a secret.
        param: The request field at fault, when there is one.
        code: Machine-readable code (defaults by status).
        type: Error type (defaults by status).
        headers: Extra response headers.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        default_type, default_code = _DEFAULTS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", "error")
        )
        self.status = status
        self.message = message
        self.param = param
        self.code = code or default_code
        self.type = type or default_type
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        """The JSON body."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        """The whole HTTP answer."""
        return JSONResponse(self.envelope(), status_code=self.status, headers=self.headers)


class BodyTooLarge(Exception):
    """Raised while a request body is read past the limit; answered with a 413 by the body limit."""


def invalid(param: str | None, message: str, code: str = "invalid_value") -> ApiError:
    """A 400 naming the field at fault."""
    return ApiError(400, message, param=param, code=code)


def not_found(what: str) -> ApiError:
    """A 404; the same answer whether the object never existed or belongs to another key."""
    return ApiError(404, f"No {what} found.", code="not_found")


def unauthorized() -> ApiError:
    """A 401 with the challenge header clients expect."""
    return ApiError(
        401,
        "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def unavailable(message: str) -> ApiError:
    """A 503: a dependency (Temporal, the database, the store) did not answer; safe to retry."""
    return ApiError(503, message, headers={"Retry-After": "1"})


def _param_of(location: tuple[Any, ...] | list[Any]) -> str | None:
    # FastAPI reports e.g. ("query", "limit"); the protocol names the field alone.
    names = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(names) or None


def install(app: FastAPI) -> None:
    """Route every error of ``app`` through the envelope."""

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        param = _param_of(first.get("loc", ()))
        message = f"Invalid '{param}': {first.get('msg', 'invalid value')}." if param else "Invalid request."
        return invalid(param, message).response()

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = {404: "Unknown request URL.", 405: "Method not allowed for this URL."}.get(
            exc.status_code, str(exc.detail)
        )
        error = ApiError(exc.status_code, message, headers=dict(exc.headers or {}))
        return error.response()

    async def database_error(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database error: %s", type(exc).__name__)
        return unavailable("The database did not answer; try again.").response()

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        return ApiError(500, "The server had an error while processing your request.").response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(OperationalError, database_error)
    app.add_exception_handler(Exception, unexpected)
