"""Failures of the Videos API as typed exceptions that carry the facts.

Every failure the client raises is a :class:`SoraError` whose class says what kind of failure it was
and whose attributes say what is known: the HTTP status, the server's error code, how long the server
asked us to wait (``retry_after``), its own retry hint (``should_retry``) and whether the failed call
may still have had its effect on the server (``may_have_created``). The last one matters for
``POST /videos``: the protocol has no idempotency key, so a create that failed ambiguously may
already be a billed job, and the submit activity looks for it before creating another.
:func:`classify` turns a response or transport exception into these facts; whether and when to try
again is decided from them in :mod:`sora_temporal.errors`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from sora_temporal.netguard import redact_url
from sora_temporal.retry_after import parse_retry_after
from sora_temporal.validation import InvalidVideoRequest

# Enough of an error body to quote; some gateways answer with a whole HTML page.
MAX_QUOTED_CHARS = 500


class SoraError(Exception):
    """Base of every failure raised by :class:`~sora_temporal.sora.client.SoraClient`.

    Attributes:
        message: What failed: the operation and the server's own message (never the API key).
        status_code: HTTP status, or ``None`` when no response arrived (or the request was never sent).
        code: The server's error code (``error.code``), if any.
        param: The request field the server (or client-side validation) blamed, if any.
        error_type: The server's error type (``error.type``), if any.
        retry_after: Seconds the server asked us to wait before trying again, if it said.
        should_retry: The server's own retry hint (OpenAI's ``x-should-retry`` header), if it sent one.
        may_have_created: Whether the request may have reached the server and had its effect; for a
            create, whether a job (and a charge) may exist despite the failure.
        bad_url: The URL itself cannot be requested (an unknown scheme, a malformed link).
    """

    default_may_have_created: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        may_have_created: bool | None = None,
        bad_url: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.param = param
        self.error_type = error_type
        self.retry_after = retry_after
        self.should_retry = should_retry
        self.may_have_created = (
            self.default_may_have_created if may_have_created is None else may_have_created
        )
        self.bad_url = bad_url

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-only attributes would be lost by the default pickling of exceptions.
        return (self.__class__, (self.message,), self.__dict__)


class SoraInvalidRequest(SoraError):
    """The request was refused as invalid (400, 422, other 4xx) or failed client-side validation."""

    default_may_have_created = False


class SoraAuthenticationError(SoraError):
    """The API key is missing, wrong or lacks permission (401, 403)."""

    default_may_have_created = False


class SoraNotFound(SoraError):
    """No such video, or its content is gone (404, 410)."""

    default_may_have_created = False


class SoraConflict(SoraError):
    """The server reported a conflicting concurrent change (409)."""

    default_may_have_created = False


class SoraRateLimited(SoraError):
    """Too many requests (429), or an exhausted quota (``code == "insufficient_quota"``)."""

    default_may_have_created = False


class SoraServerError(SoraError):
    """The server failed (5xx) or gave up waiting for the request (408).

    The outcome is unknown, except for 501 and 505: the server did nothing.
    """

    default_may_have_created = True


class SoraConnectionError(SoraError):
    """No complete response arrived.

    ``may_have_created`` is ``False`` only when the connection was never established (refused,
    unreachable, no free connection in the pool): then the request provably never left this host.
    """

    default_may_have_created = True


class SoraTimeout(SoraConnectionError):
    """A timeout: connecting (nothing sent), or waiting to send or to read (outcome unknown)."""


class SoraProtocolError(SoraError):
    """The server answered in a way that cannot be understood (e.g. an unparseable 2xx body)."""

    default_may_have_created = True


class SoraResponseTooLarge(SoraProtocolError):
    """A body was larger than its limit (declared, or decoded so far); it was not read further.

    ``code`` is ``response_too_large``.
    """


class SoraUnsafeResponse(SoraProtocolError):
    """The answer asks for something the client refuses to do, whatever the server says next.

    ``code`` says what: ``invalid_video_id`` (an id that breaks the id rule, which would address
    another resource or break a path, a row or a search attribute) or ``unsafe_url`` (a download
    link, or a redirect, to a refused scheme, host or address). Nothing was sent to such a URL.
    """


# --- classification --------------------------------------------------------------------------


def classify(
    operation: str,
    failure: httpx.Response | BaseException,
    *,
    detail: str | None = None,
    api_key: str | None = None,
) -> SoraError:
    """Turn a failed call into the right :class:`SoraError` with the facts it carries.

    Args:
        operation: What was being done, e.g. ``"create video"``; it starts the message.
        failure: The error response (its body already read), a 2xx response whose body could not be
            used, an ``httpx`` transport exception, or a client-side :class:`InvalidVideoRequest`.
        detail: Why a 2xx response was unusable, or extra context for the message.
        api_key: Redacted from the message should a server echo it back.

    Returns:
        The error to raise. Exceptions this module does not know are wrapped as a plain, ambiguous
        :class:`SoraError` (it may have created) so that callers never have to guess.
    """
    if isinstance(failure, httpx.Response):
        error = _from_response(operation, failure, detail)
    else:
        error = _from_exception(operation, failure, detail)
    if api_key and api_key in error.message:
        error.message = error.message.replace(api_key, "[redacted]")
        error.args = (error.message,)
    return error


def _from_exception(operation: str, exc: BaseException, detail: str | None) -> SoraError:
    suffix = f" ({detail})" if detail else ""
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, InvalidVideoRequest):
        return SoraInvalidRequest(
            f"{operation}: invalid request: {exc.message}",
            param=exc.param,
            code="invalid_request",
            error_type="invalid_request_error",
        )
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        # The connection never opened, so nothing was sent.
        return SoraTimeout(f"{operation}: timed out before sending{suffix}: {what}", may_have_created=False)
    if isinstance(exc, httpx.TimeoutException):
        # Read/write timeouts: the server may have received the request and acted on it.
        return SoraTimeout(
            f"{operation}: timed out waiting for the server{suffix}: {what}", may_have_created=True
        )
    if isinstance(exc, httpx.ConnectError):
        return SoraConnectionError(f"{operation}: could not connect{suffix}: {what}", may_have_created=False)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        # A malformed URL (e.g. a gateway's download link in an unknown scheme) will not get better.
        return SoraConnectionError(
            f"{operation}: cannot request this URL{suffix}: {what}", may_have_created=False, bad_url=True
        )
    if isinstance(exc, httpx.TooManyRedirects | httpx.DecodingError):
        return SoraProtocolError(f"{operation}: unusable response{suffix}: {what}")
    if isinstance(exc, httpx.TransportError):
        # Read/write errors, a connection closed mid-request or mid-response: a reset after the
        # request was sent looks the same as one before the server acted, so both are ambiguous.
        return SoraConnectionError(f"{operation}: connection failed{suffix}: {what}", may_have_created=True)
    return SoraError(f"{operation}: unexpected failure{suffix}: {what}", may_have_created=True)


def _from_response(operation: str, response: httpx.Response, detail: str | None) -> SoraError:
    status = response.status_code
    headers = response.headers
    retry_after = parse_retry_after(headers)
    should_retry = _should_retry(headers)
    if 200 <= status < 300:
        why = detail or "the response body could not be parsed"
        return SoraProtocolError(
            f"{operation}: HTTP {status} but {why}: {_quote(_text(response))}",
            status_code=status,
            retry_after=retry_after,
            should_retry=should_retry,
        )
    envelope = _envelope(response)
    message = envelope.get("message") or _quote(_text(response)) or response.reason_phrase or "no message"
    extras = ", ".join(f"{key}={envelope[key]}" for key in ("code", "param") if envelope.get(key))
    text = f"{operation}: HTTP {status}"
    if response.reason_phrase:
        text += f" {response.reason_phrase}"
    text += f": {message}"
    if extras:
        text += f" ({extras})"
    if detail:
        text += f" [{detail}]"
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": envelope.get("code"),
        "param": envelope.get("param"),
        "error_type": envelope.get("type"),
        "retry_after": retry_after,
        "should_retry": should_retry,
    }

    cls: type[SoraError]
    if status in (400, 422):
        cls = SoraInvalidRequest
    elif status in (401, 403):
        cls = SoraAuthenticationError
    elif status in (404, 410):
        cls = SoraNotFound
    elif status == 409:
        cls = SoraConflict
    elif status == 429:
        cls = SoraRateLimited
    elif status == 408 or status >= 500:
        cls = SoraServerError
        if status in (501, 505):
            # The endpoint (or HTTP version) is not implemented: the server did nothing.
            kwargs["may_have_created"] = False
    elif 400 <= status < 500:
        cls = SoraInvalidRequest
    else:
        # 1xx/3xx reaching us means a redirect on an API call (e.g. http:// base URL upgraded to
        # https://); following it could resend a POST somewhere else, so it is reported instead.
        cls = SoraProtocolError
        location = headers.get("location")
        if location:
            text += f" (redirected to {redact_url(location)}; check the base URL)"
        kwargs["may_have_created"] = False
    return cls(text, **kwargs)


def _should_retry(headers: Mapping[str, str]) -> bool | None:
    # OpenAI's own hint, which its SDK obeys before any status-based rule.
    value = headers.get("x-should-retry", "").strip().lower()
    return {"true": True, "false": False}.get(value)


def _envelope(response: httpx.Response) -> dict[str, str]:
    """``message``/``type``/``param``/``code`` from OpenAI's envelope or the usual gateway shapes."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(body, Mapping):
        return {}
    found: dict[str, str] = {}
    candidates: list[Any] = [body.get("error"), body.get("detail"), body]
    detail = body.get("detail")
    if isinstance(detail, Mapping):
        candidates.insert(1, detail.get("error"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip() and "message" not in found:
            found["message"] = _quote(candidate)
        elif isinstance(candidate, Mapping):
            for key in ("message", "type", "param", "code"):
                value = candidate.get(key)
                if key not in found and isinstance(value, str | int) and not isinstance(value, bool):
                    text = str(value).strip()
                    if text:
                        found[key] = _quote(text) if key == "message" else text
        elif isinstance(candidate, list) and candidate and "message" not in found:
            # FastAPI-style validation details: a list of {loc, msg}.
            found["message"] = _quote(json.dumps(candidate))
    return found


def _text(response: httpx.Response) -> str:
    try:
        return response.text.strip()
    except (UnicodeDecodeError, LookupError, httpx.ResponseNotRead):
        return ""


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTED_CHARS else text[:MAX_QUOTED_CHARS] + "..."
