"""API errors in the service's shape: ``{"error": {"code", "message"}}``.

The SDK maps these codes (``forbidden``, ``not_found``, ``store_suspended``, ``rate_limited`` ...)
to its exception classes, so the code matters more than the status.
"""

from __future__ import annotations

from aiohttp import web

from simulator.blob.store import StoreError


class ApiError(Exception):
    """An error answer in the service's JSON shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    @classmethod
    def from_store(cls, err: StoreError) -> ApiError:
        """The answer for a request the store refused."""
        return cls(err.status, err.code, err.message)

    def response(self) -> web.Response:
        """The HTTP answer."""
        return web.json_response(
            {"error": {"code": self.code, "message": self.message}}, status=self.status, headers=self.headers
        )


def not_found() -> ApiError:
    """The answer for a blob that does not exist (or is not visible with this access level)."""
    return ApiError(404, "not_found", "The requested blob does not exist")


def bad_request(message: str) -> ApiError:
    """The answer for a malformed request."""
    return ApiError(400, "bad_request", message)
