"""Requests are validated like the real service, and every error comes in OpenAI's envelope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from simulator.testing import LocalSimulator

LocalSimFactory = Callable[..., Awaitable[LocalSimulator]]


async def error_of(response: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def form(**fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    return data


def form_with_image(image: bytes, content_type: str = "image/png", **fields: str) -> aiohttp.FormData:
    data = form(**fields)
    data.add_field("input_reference", image, filename="reference", content_type=content_type)
    return data


@pytest.fixture
async def sim(local_sim: LocalSimFactory) -> LocalSimulator:
    return await local_sim()


async def test_a_missing_prompt_is_rejected(sim: LocalSimulator) -> None:
    error = await error_of(await sim.http.post("/v1/videos", data=form(model="sora-2")), 400)

    assert error["param"] == "prompt"
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "missing_required_parameter"


async def test_a_blank_prompt_is_rejected(sim: LocalSimulator) -> None:
    error = await error_of(await sim.http.post("/v1/videos", json={"prompt": "   "}), 400)

    assert error["param"] == "prompt"


@pytest.mark.parametrize("model", ["sora-3", "gpt-4o", "sora-2-pro-latest", ""])
async def test_unknown_models_are_rejected(sim: LocalSimulator, model: str) -> None:
    error = await error_of(await sim.http.post("/v1/videos", data=form(prompt="x", model=model)), 400)

    assert error["param"] == "model"


@pytest.mark.parametrize("model", ["sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06"])
async def test_known_models_and_dated_snapshots_are_accepted(sim: LocalSimulator, model: str) -> None:
    response = await sim.http.post("/v1/videos", data=form(prompt="x", model=model))

    assert response.status == 200
    assert (await response.json())["model"] == model


@pytest.mark.parametrize("seconds", ["4", "8", "12"])
async def test_supported_durations_are_accepted(sim: LocalSimulator, seconds: str) -> None:
    response = await sim.http.post("/v1/videos", data=form(prompt="x", seconds=seconds))

    assert response.status == 200
    assert (await response.json())["seconds"] == seconds


@pytest.mark.parametrize("seconds", ["5", "10", "0", "four"])
async def test_unsupported_durations_are_rejected(sim: LocalSimulator, seconds: str) -> None:
    error = await error_of(await sim.http.post("/v1/videos", data=form(prompt="x", seconds=seconds)), 400)

    assert error["param"] == "seconds"
    assert error["code"] == "invalid_value"


async def test_an_integer_duration_in_json_is_a_type_error(sim: LocalSimulator) -> None:
    error = await error_of(await sim.http.post("/v1/videos", json={"prompt": "x", "seconds": 4}), 400)

    assert error["param"] == "seconds"
    assert error["code"] == "invalid_type"


async def test_portrait_and_landscape_are_the_only_sora_2_sizes(sim: LocalSimulator) -> None:
    for size in ("720x1280", "1280x720"):
        assert (await sim.http.post("/v1/videos", data=form(prompt="x", size=size))).status == 200
    for size in ("1024x1792", "1792x1024", "640x480", "1280X720"):
        error = await error_of(await sim.http.post("/v1/videos", data=form(prompt="x", size=size)), 400)
        assert error["param"] == "size"


async def test_sora_2_pro_also_accepts_the_tall_and_wide_sizes(sim: LocalSimulator) -> None:
    for size in ("1024x1792", "1792x1024", "720x1280"):
        response = await sim.http.post("/v1/videos", data=form(prompt="x", model="sora-2-pro", size=size))
        assert response.status == 200


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
async def test_a_reference_image_of_the_right_size_and_type_is_accepted(
    sim: LocalSimulator, make_image: Callable[..., bytes], image_format: str
) -> None:
    image = make_image(1280, 720, image_format)

    response = await sim.http.post("/v1/videos", data=form_with_image(image, prompt="x", size="1280x720"))

    assert response.status == 200


async def test_the_reference_type_is_sniffed_from_the_bytes_not_the_declared_type(
    sim: LocalSimulator, make_image: Callable[..., bytes]
) -> None:
    gif = make_image(720, 1280, "GIF")

    error = await error_of(
        await sim.http.post("/v1/videos", data=form_with_image(gif, "image/png", prompt="x")), 400
    )

    assert error["param"] == "input_reference"
    assert error["code"] == "invalid_image_format"


async def test_a_reference_that_is_not_an_image_is_rejected(sim: LocalSimulator) -> None:
    error = await error_of(
        await sim.http.post("/v1/videos", data=form_with_image(b"not an image", prompt="x")), 400
    )

    assert error["param"] == "input_reference"


async def test_a_reference_of_another_size_is_rejected_with_the_services_message(
    sim: LocalSimulator, make_image: Callable[..., bytes]
) -> None:
    image = make_image(1280, 720)

    error = await error_of(await sim.http.post("/v1/videos", data=form_with_image(image, prompt="x")), 400)

    assert error["message"] == "Inpaint image must match the requested width and height"
    assert error["param"] == "input_reference"


@pytest.mark.parametrize(
    "reference", [{"file_id": "file-abc123"}, {"image_url": "https://example.com/a.png"}]
)
async def test_json_references_by_file_id_or_image_url_are_accepted(
    sim: LocalSimulator, reference: dict[str, str]
) -> None:
    response = await sim.http.post("/v1/videos", json={"prompt": "x", "input_reference": reference})

    assert response.status == 200
    [job] = sim.simulator.store.all()
    assert job.spec.reference is not None and job.spec.reference.size is None


@pytest.mark.parametrize("reference", [{}, {"url": "x"}, {"file_id": "f", "image_url": "u"}, "file-abc", 3])
async def test_malformed_json_references_are_rejected(sim: LocalSimulator, reference: object) -> None:
    response = await sim.http.post("/v1/videos", json={"prompt": "x", "input_reference": reference})

    assert (await error_of(response, 400))["param"] == "input_reference"


async def test_a_form_reference_by_file_id_is_accepted(sim: LocalSimulator) -> None:
    data = form(prompt="x")
    data.add_field("input_reference[file_id]", "file-abc123")

    assert (await sim.http.post("/v1/videos", data=data)).status == 200


async def test_unknown_parameters_are_rejected(sim: LocalSimulator) -> None:
    error = await error_of(await sim.http.post("/v1/videos", json={"prompt": "x", "fps": 30}), 400)

    assert error["code"] == "unknown_parameter"
    assert error["param"] == "fps"


async def test_a_body_that_is_not_json_is_rejected(sim: LocalSimulator) -> None:
    response = await sim.http.post(
        "/v1/videos", data=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert (await error_of(response, 400))["code"] == "invalid_json"


async def test_azure_style_api_key_header_is_accepted(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()

    async with aiohttp.ClientSession() as session:
        response = await session.get(sim.http.make_url("/v1/videos"), headers={"api-key": "sk-local"})

    assert response.status == 200


async def test_requests_without_a_key_are_unauthorized(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()

    async with aiohttp.ClientSession() as session:
        response = await session.get(sim.http.make_url("/v1/videos"))
        error = await error_of(response, 401)

    assert "API key" in error["message"]


async def test_a_wrong_key_is_unauthorized_and_nothing_is_created(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()

    async with aiohttp.ClientSession() as session:
        response = await session.post(
            sim.http.make_url("/v1/videos"), json={"prompt": "x"}, headers={"Authorization": "Bearer sk-nope"}
        )
        error = await error_of(response, 401)

    assert error["code"] == "invalid_api_key"
    assert sim.simulator.store.all() == []


async def test_without_a_configured_key_any_non_empty_key_is_accepted(local_sim: LocalSimFactory) -> None:
    sim = await local_sim(api_key=None)

    async with aiohttp.ClientSession() as session:
        accepted = await session.get(
            sim.http.make_url("/v1/videos"), headers={"Authorization": "Bearer whatever"}
        )
        refused = await session.get(sim.http.make_url("/v1/videos"), headers={"Authorization": "Bearer "})

    assert accepted.status == 200
    assert refused.status == 401


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"order": "newest"}, "order"),
        ({"after": "video_x"}, "after"),
    ],
)
async def test_bad_list_parameters_are_rejected(
    sim: LocalSimulator, query: dict[str, str], param: str
) -> None:
    error = await error_of(await sim.http.get("/v1/videos", params=query), 400)

    assert error["param"] == param


async def test_an_unknown_content_variant_is_rejected(sim: LocalSimulator) -> None:
    video = await (await sim.http.post("/v1/videos", json={"prompt": "x"})).json()

    response = await sim.http.get(f"/v1/videos/{video['id']}/content", params={"variant": "poster"})

    assert (await error_of(response, 400))["param"] == "variant"


async def test_unknown_ids_and_paths_are_not_found_in_the_envelope(sim: LocalSimulator) -> None:
    for method, path in (
        ("GET", "/v1/videos/video_missing"),
        ("DELETE", "/v1/videos/video_missing"),
        ("GET", "/v1/videos/video_missing/content"),
        ("POST", "/v1/videos/video_missing/remix"),
        ("GET", "/v1/images"),
    ):
        response = await sim.http.request(method, path, json={"prompt": "x"} if method == "POST" else None)
        await error_of(response, 404)


async def test_remix_needs_a_prompt(sim: LocalSimulator) -> None:
    video = await (await sim.http.post("/v1/videos", json={"prompt": "x"})).json()
    await sim.http.post(f"/_sim/jobs/{video['id']}", json={"status": "completed"})

    response = await sim.http.post(f"/v1/videos/{video['id']}/remix", json={})

    assert (await error_of(response, 400))["param"] == "prompt"
