"""Pure parsing and classification of the Sora client: no network, no simulator."""

from __future__ import annotations

import email.utils
import pickle
import time

import httpx
import pytest

from sora_temporal.errors import is_retryable
from sora_temporal.retry_after import parse_retry_after
from sora_temporal.settings import SoraSettings
from sora_temporal.sora import (
    AuthStyle,
    SoraAuthenticationError,
    SoraClient,
    SoraConflict,
    SoraConnectionError,
    SoraError,
    SoraInvalidRequest,
    SoraNotFound,
    SoraProtocolError,
    SoraRateLimited,
    SoraServerError,
    SoraTimeout,
    classify,
)
from sora_temporal.sora.client import strip_foreign_credentials
from sora_temporal.sora.models import parse_page, parse_status, parse_video
from sora_temporal.types import RemoteStatus
from sora_temporal.validation import InvalidVideoRequest

REQUEST = httpx.Request("POST", "https://api.example.test/v1/videos")


def _response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if isinstance(body, bytes | str):
        return httpx.Response(status, content=body, headers=headers, request=REQUEST)
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


# --- video objects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("queued", RemoteStatus.QUEUED),
        ("in_progress", RemoteStatus.IN_PROGRESS),
        ("processing", RemoteStatus.IN_PROGRESS),
        ("COMPLETED", RemoteStatus.COMPLETED),
        ("failed", RemoteStatus.FAILED),
        ("rendering", RemoteStatus.UNKNOWN),
        (None, RemoteStatus.UNKNOWN),
        (3, RemoteStatus.UNKNOWN),
    ],
)
def test_status_aliases(raw: object, expected: RemoteStatus) -> None:
    assert parse_status(raw) is expected


def test_video_ignores_unknown_fields_and_keeps_raw_status() -> None:
    video = parse_video({"id": "video_1", "status": "rendering", "progress": 12, "shiny": {"new": True}})
    assert (video.status, video.raw_status, video.progress) == (RemoteStatus.UNKNOWN, "rendering", 12)


def test_video_full_openai_object() -> None:
    video = parse_video(
        {
            "id": "video_1",
            "object": "video",
            "status": "failed",
            "progress": 40,
            "model": "sora-2",
            "prompt": "a cat",
            "size": "1280x720",
            "seconds": "8",
            "created_at": 1700000000,
            "completed_at": 1700000100,
            "expires_at": 1700003700,
            "error": {"code": "moderation_blocked", "message": "blocked"},
            "remixed_from_video_id": "video_0",
        }
    )
    assert video.status is RemoteStatus.FAILED
    assert (video.model, video.prompt, video.size, video.seconds) == ("sora-2", "a cat", "1280x720", "8")
    assert (video.created_at, video.completed_at, video.expires_at) == (1700000000, 1700000100, 1700003700)
    assert (video.error_code, video.error_message) == ("moderation_blocked", "blocked")
    assert video.remixed_from_video_id == "video_0"
    assert video.download_url is None


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://cdn.test/a.mp4"},
        {"video_url": "https://cdn.test/a.mp4"},
        {"outputs": {"video_url": "https://cdn.test/a.mp4"}},
    ],
)
def test_gateway_download_url_locations(body: dict[str, object]) -> None:
    video = parse_video({"id": "v", "status": "completed", **body})
    assert video.download_url == "https://cdn.test/a.mp4"


def test_gateway_number_and_string_forms() -> None:
    video = parse_video(
        {
            "id": "v",
            "status": "processing",
            "progress": "55.5",
            "seconds": 10,
            "created_at": "2025-01-01T00:00:00Z",
        }
    )
    assert (video.progress, video.seconds, video.created_at) == (55, "10", 1735689600)


def test_completed_without_progress_counts_as_done() -> None:
    assert parse_video({"id": "v", "status": "completed"}).progress == 100


@pytest.mark.parametrize("body", [[], {"status": "queued"}, {"id": ""}, {"id": 7}])
def test_video_without_id_is_rejected(body: object) -> None:
    with pytest.raises(ValueError):
        parse_video(body)


def test_page_skips_entries_without_id_and_derives_cursors() -> None:
    page = parse_page({"data": [{"id": "a", "status": "queued"}, {"oops": 1}, {"id": "b"}]})
    assert [v.id for v in page.data] == ["a", "b"]
    assert (page.first_id, page.last_id, page.has_more) == ("a", "b", False)


# --- error classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "retryable", "may_have_created"),
    [
        (400, SoraInvalidRequest, False, False),
        (422, SoraInvalidRequest, False, False),
        (401, SoraAuthenticationError, False, False),
        (403, SoraAuthenticationError, False, False),
        (404, SoraNotFound, False, False),
        (410, SoraNotFound, False, False),
        (408, SoraServerError, True, True),
        (409, SoraConflict, True, False),
        (429, SoraRateLimited, True, False),
        (500, SoraServerError, True, True),
        (502, SoraServerError, True, True),
        (503, SoraServerError, True, True),
        (504, SoraServerError, True, True),
        (501, SoraServerError, False, False),
        (413, SoraInvalidRequest, False, False),
        (302, SoraProtocolError, False, False),
    ],
)
def test_status_mapping(status: int, cls: type[SoraError], retryable: bool, may_have_created: bool) -> None:
    err = classify("create video", _response(status, {"error": {"message": "nope"}}))
    assert type(err) is cls
    assert (is_retryable(err), err.may_have_created, err.status_code) == (retryable, may_have_created, status)


def test_envelope_fields_and_message() -> None:
    body = {
        "error": {"message": "Invalid size", "type": "invalid_request_error", "param": "size", "code": "bad"}
    }
    err = classify("create video", _response(400, body))
    assert (err.code, err.param, err.error_type) == ("bad", "size", "invalid_request_error")
    assert err.message.startswith("create video: HTTP 400")
    assert "Invalid size" in err.message


@pytest.mark.parametrize(
    "body",
    [
        {"error": "plain string error"},
        {"detail": "plain string error"},
        {"message": "plain string error", "code": 7},
        b"plain string error",
    ],
)
def test_gateway_error_shapes(body: object) -> None:
    assert "plain string error" in classify("list videos", _response(500, body)).message


def test_api_key_is_redacted_from_messages() -> None:
    err = classify(
        "list videos",
        _response(401, {"error": {"message": "bad key sk-secret-123"}}),
        api_key="sk-secret-123",
    )
    assert "sk-secret-123" not in err.message
    assert "sk-secret-123" not in str(err)


def test_unparseable_success_body_is_a_protocol_error() -> None:
    err = classify("retrieve video v", _response(200, b"<html>"), detail="not JSON")
    assert isinstance(err, SoraProtocolError)
    assert (is_retryable(err), err.may_have_created) == (True, True)


def test_x_should_retry_overrides_status() -> None:
    assert is_retryable(classify("x", _response(500, {}, {"x-should-retry": "false"}))) is False
    assert is_retryable(classify("x", _response(400, {}, {"x-should-retry": "true"}))) is True


def test_insufficient_quota_is_not_retryable() -> None:
    err = classify("x", _response(429, {"error": {"message": "quota", "code": "insufficient_quota"}}))
    assert isinstance(err, SoraRateLimited)
    assert is_retryable(err) is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_retry_after_http_date() -> None:
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    found = parse_retry_after(httpx.Headers({"retry-after": date}))
    assert found is not None and 25 <= found <= 31


@pytest.mark.parametrize(
    ("exc", "cls", "may_have_created"),
    [
        (httpx.ConnectError("refused"), SoraConnectionError, False),
        (httpx.ConnectTimeout("slow connect"), SoraTimeout, False),
        (httpx.PoolTimeout("pool"), SoraTimeout, False),
        (httpx.ReadTimeout("slow"), SoraTimeout, True),
        (httpx.WriteTimeout("slow"), SoraTimeout, True),
        (httpx.ReadError("reset"), SoraConnectionError, True),
        (httpx.WriteError("reset"), SoraConnectionError, True),
        (httpx.RemoteProtocolError("closed"), SoraConnectionError, True),
    ],
)
def test_transport_mapping(exc: Exception, cls: type[SoraError], may_have_created: bool) -> None:
    err = classify("create video", exc)
    assert type(err) is cls
    assert (is_retryable(err), err.may_have_created, err.status_code) == (True, may_have_created, None)


def test_timeout_is_a_connection_error() -> None:
    assert isinstance(classify("x", httpx.ReadTimeout("slow")), SoraConnectionError)


def test_validation_failure_carries_param() -> None:
    err = classify("create video", InvalidVideoRequest("size", "bad size"))
    assert isinstance(err, SoraInvalidRequest)
    assert (err.param, is_retryable(err), err.may_have_created) == ("size", False, False)


def test_errors_survive_pickling() -> None:
    err = classify("x", _response(429, {}, {"retry-after": "2"}))
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is SoraRateLimited
    assert (copy.retry_after, copy.status_code, copy.message) == (2.0, 429, err.message)


# --- configuration ---------------------------------------------------------------------------


async def test_the_client_takes_endpoint_key_style_and_timeout_from_settings() -> None:
    settings = SoraSettings(
        base_url="https://example.openai.azure.com/openai/v1",
        api_key="k",
        auth_style=AuthStyle.API_KEY,
        timeout_seconds=12.5,
    )
    async with SoraClient.from_settings(settings) as client:
        assert client.base_url == "https://example.openai.azure.com/openai/v1/"
        assert client.auth_style is AuthStyle.API_KEY


# --- credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://api.example.test/v1/videos/v/content", True),
        ("https://api.example.test:443/other/path", True),
        ("https://cdn.example.test/v.mp4", False),
        ("http://api.example.test/v1/videos", False),
        ("https://api.example.test:8443/v1/videos", False),
    ],
)
def test_credentials_only_go_to_the_api_origin(url: str, kept: bool) -> None:
    # Also applied to every redirect hop; httpx itself would forward Azure's api-key header.
    request = httpx.Request("GET", url, headers={"Authorization": "Bearer k", "api-key": "k"})
    strip_foreign_credentials(request, httpx.URL("https://api.example.test/v1/"))
    assert ("authorization" in request.headers, "api-key" in request.headers) == (kept, kept)
