"""Bad input, missing keys and unknown routes: protocol-shaped errors, and nothing upstream.

This module's simulator serves no job at all, so its request counters prove that no refused request
ever reached the Videos API.
"""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from api_support import API_KEY_A, ApiStack
from PIL import Image

pytestmark = pytest.mark.integration


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error


# (case, form fields or JSON body, files, expected param)
MULTIPART_CASES: list[tuple[str, dict[str, str], dict[str, Any] | None, str]] = [
    ("no prompt", {"model": "sora-2"}, None, "prompt"),
    ("blank prompt", {"prompt": "   "}, None, "prompt"),
    ("prompt too long", {"prompt": "x" * 4001}, None, "prompt"),
    ("size not offered by the model", {"prompt": "p", "size": "1792x1024"}, None, "size"),
    ("size with whitespace", {"prompt": "p", "size": " 1280x720"}, None, "size"),
    ("size that is no size", {"prompt": "p", "size": "big"}, None, "size"),
    ("seconds not offered", {"prompt": "p", "seconds": "5"}, None, "seconds"),
    ("seconds not a number", {"prompt": "p", "seconds": "four"}, None, "seconds"),
    ("unknown Sora model", {"prompt": "p", "model": "sora-3"}, None, "model"),
    ("malformed model name", {"prompt": "p", "model": "a model"}, None, "model"),
    ("unknown field", {"prompt": "p", "quality": "high"}, None, "quality"),
    (
        "reference that is no image",
        {"prompt": "p"},
        {"input_reference": ("x.png", b"hello", "image/png")},
        "input_reference",
    ),
    ("reference file id", {"prompt": "p", "input_reference[file_id]": "file-1"}, None, "input_reference"),
]

JSON_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("prompt not a string", {"prompt": 7}, "prompt"),
    ("seconds a boolean", {"prompt": "p", "seconds": True}, "seconds"),
    (
        "reference URL not http",
        {"prompt": "p", "input_reference": {"image_url": "ftp://example.com/a.png"}},
        "input_reference",
    ),
    ("reference of the wrong shape", {"prompt": "p", "input_reference": "a.png"}, "input_reference"),
    (
        "reference URL at the metadata address",
        {"prompt": "p", "input_reference": {"image_url": "https://169.254.169.254/latest/meta-data"}},
        "input_reference",
    ),
]


@pytest.mark.parametrize(
    ("case", "fields", "files", "param"), MULTIPART_CASES, ids=[c[0] for c in MULTIPART_CASES]
)
def test_bad_multipart_input_is_a_400_naming_the_field(
    api_stack: ApiStack, case: str, fields: dict[str, str], files: dict[str, Any] | None, param: str
) -> None:
    with api_stack.http() as http:
        response = http.post("/v1/videos", data=fields, files=files)

    error = _error(response)
    assert response.status_code == 400, (case, error)
    assert (error["param"], error["type"]) == (param, "invalid_request_error")


@pytest.mark.parametrize(("case", "body", "param"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_bad_json_input_is_a_400_naming_the_field(
    api_stack: ApiStack, case: str, body: dict[str, Any], param: str
) -> None:
    with api_stack.http() as http:
        response = http.post("/v1/videos", json=body)

    error = _error(response)
    assert response.status_code == 400, (case, error)
    assert error["param"] == param


def test_a_body_that_is_not_json_is_a_400(api_stack: ApiStack) -> None:
    with api_stack.http() as http:
        response = http.post("/v1/videos", content=b"{nope", headers={"Content-Type": "application/json"})

    assert response.status_code == 400 and _error(response)["code"] == "invalid_json"


def test_a_reference_that_does_not_fit_any_limit_is_refused_before_reading_it(api_stack: ApiStack) -> None:
    huge = b"\xff\xd8" + b"\0" * (22 * 1024 * 1024)
    with api_stack.http() as http:
        response = http.post(
            "/v1/videos", data={"prompt": "p"}, files={"input_reference": ("a.jpg", huge, "image/jpeg")}
        )

    assert response.status_code == 413 and _error(response)["code"] == "request_too_large"


def test_an_idempotency_key_that_cannot_be_a_header_value_is_refused(api_stack: ApiStack) -> None:
    with api_stack.http() as http:
        response = http.post("/v1/videos", json={"prompt": "p"}, headers={"Idempotency-Key": "x" * 256})

    assert response.status_code == 400 and _error(response)["param"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("order=sideways", "order"),
        ("after=video_nope", "after"),
    ],
)
def test_bad_list_parameters_are_400s_naming_the_parameter(
    api_stack: ApiStack, query: str, param: str
) -> None:
    with api_stack.http() as http:
        response = http.get(f"/v1/videos?{query}")

    assert response.status_code == 400 and _error(response)["param"] == param


def test_a_bad_content_variant_is_a_400(api_stack: ApiStack) -> None:
    with api_stack.http() as http:
        response = http.get("/v1/videos/video_x/content?variant=poster")

    assert response.status_code == 400 and _error(response)["param"] == "variant"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/videos"),
        ("GET", "/v1/videos"),
        ("GET", "/v1/videos/video_x"),
        ("GET", "/v1/videos/video_x/content"),
        ("DELETE", "/v1/videos/video_x"),
    ],
)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer sk-wrong", f"Basic {API_KEY_A}", API_KEY_A],
    ids=["none", "empty", "wrong", "basic", "bare"],
)
def test_every_route_needs_a_valid_bearer_key(
    api_stack: ApiStack, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    with api_stack.http(key=None) as http:
        response = http.request(
            method, path, headers=headers, json={"prompt": "p"} if method == "POST" else None
        )

    error = _error(response)
    assert response.status_code == 401
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert response.headers["www-authenticate"] == "Bearer"


def test_unknown_routes_and_methods_answer_in_the_error_envelope(api_stack: ApiStack) -> None:
    with api_stack.http() as http:
        missing = http.get("/v1/nothing-here")
        wrong_method = http.put("/v1/videos")

    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"
    assert wrong_method.status_code == 405 and _error(wrong_method)["code"] == "method_not_allowed"


def test_health_needs_no_key(api_stack: ApiStack) -> None:
    with api_stack.http(key=None) as http:
        response = http.get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_nothing_refused_reached_the_videos_api_or_became_a_job(api_stack: ApiStack) -> None:
    # Runs last in this module: every case above was refused.
    with api_stack.http() as http:
        listed = http.get("/v1/videos").json()

    assert listed["data"] == []
    stats = api_stack.sim.stats()
    assert stats["creates"] == 0
    assert sum(stats["requests"].values()) == 0, json.dumps(stats["requests"])
