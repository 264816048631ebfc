"""The gateway dialect behaves like LiteLLM/Together/OpenRouter-style gateways; OpenAI's stays strict."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from simulator.testing import RunningSimulator


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def auth(sim: RunningSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


def create(http: httpx.Client, sim: RunningSimulator, **fields: Any) -> httpx.Response:
    body = {"prompt": "a gateway job", **fields}
    return http.post(f"{sim.base_url}/videos", json=body, headers=auth(sim))


def completed(http: httpx.Client, sim: RunningSimulator, **fields: Any) -> dict[str, Any]:
    video_id = create(http, sim, **fields).json()["id"]
    sim.force_job(video_id, status="completed")
    video: dict[str, Any] = http.get(f"{sim.base_url}/videos/{video_id}", headers=auth(sim)).json()
    return video


def test_a_running_job_reports_processing(http: httpx.Client, gw_sim: RunningSimulator) -> None:
    # No queue time and no end: the job is rendering from the first poll on.
    video = create(http, gw_sim, prompt="[sim:never] [sim:duration=0]").json()

    polled = http.get(f"{gw_sim.base_url}/videos/{video['id']}", headers=auth(gw_sim)).json()

    assert polled["status"] == "processing"
    assert 0 <= polled["progress"] <= 99


def test_a_completed_job_carries_the_download_url_in_three_places(
    http: httpx.Client, gw_sim: RunningSimulator
) -> None:
    video = completed(http, gw_sim)

    assert video["status"] == "completed"
    assert video["url"] == video["video_url"] == video["outputs"]["video_url"]
    assert video["url"].startswith(gw_sim.root_url + "/files/")


def test_the_download_url_streams_the_mp4_without_auth(
    http: httpx.Client, gw_sim: RunningSimulator, tmp_path: Path
) -> None:
    video = completed(http, gw_sim, size="1280x720", seconds=4)

    from_url = http.get(video["url"])
    from_content = http.get(f"{gw_sim.base_url}/videos/{video['id']}/content", headers=auth(gw_sim))

    assert from_url.status_code == 200
    assert from_url.headers["content-type"] == "video/mp4"
    assert from_url.content == from_content.content
    with av.open(io.BytesIO(from_url.content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)


def test_the_download_url_needs_its_signature(http: httpx.Client, gw_sim: RunningSimulator) -> None:
    video = completed(http, gw_sim)
    unsigned = video["url"].split("?")[0]

    assert http.get(unsigned).status_code == 403
    assert http.get(unsigned + "?sig=forged").status_code == 403


def test_the_download_url_respects_expiry(http: httpx.Client, gw_sim: RunningSimulator) -> None:
    video = completed(http, gw_sim)
    gw_sim.force_job(video["id"], expire=True)

    response = http.get(video["url"])

    assert response.status_code == 404
    assert "expired" in response.json()["error"]["message"]


def test_the_download_url_can_be_truncated_by_a_content_rule(
    http: httpx.Client, gw_sim: RunningSimulator
) -> None:
    video = completed(http, gw_sim)
    gw_sim.add_fault("content", "truncate", count=1)

    with pytest.raises(httpx.RemoteProtocolError):
        http.get(video["url"])

    assert http.get(video["url"]).status_code == 200
    assert gw_sim.stats()["requests"]["files"] == 2


def test_free_form_models_sizes_and_durations_are_accepted(
    http: httpx.Client, gw_sim: RunningSimulator
) -> None:
    veo = create(http, gw_sim, model="gemini/veo-3.1-generate-preview", size="1920x1080", seconds=8)
    runway = create(http, gw_sim, model="runwayml/gen4_turbo", size="960x960", seconds="5")

    assert veo.status_code == 200, veo.text
    assert (veo.json()["model"], veo.json()["size"], veo.json()["seconds"]) == (
        "gemini/veo-3.1-generate-preview",
        "1920x1080",
        "8",
    )
    assert runway.status_code == 200, runway.text
    assert runway.json()["seconds"] == "5"


@pytest.mark.parametrize(
    ("field", "value"),
    [("size", "8x8"), ("size", "5000x720"), ("seconds", 0), ("seconds", 61), ("seconds", "4.5")],
)
def test_out_of_range_sizes_and_durations_are_rejected(
    http: httpx.Client, gw_sim: RunningSimulator, field: str, value: object
) -> None:
    response = create(http, gw_sim, **{field: value})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == field


def test_an_odd_free_form_size_still_renders_exactly(http: httpx.Client, gw_sim: RunningSimulator) -> None:
    video = completed(http, gw_sim, size="97x65", seconds=1)

    content = http.get(video["url"]).content

    with av.open(io.BytesIO(content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (97, 65)
        assert container.duration is not None
        assert abs(container.duration / av.time_base - 1.0) <= 0.1


@pytest.mark.parametrize("variant", ["thumbnail", "spritesheet"])
def test_thumbnail_and_spritesheet_are_not_offered(
    http: httpx.Client, gw_sim: RunningSimulator, variant: str
) -> None:
    video = completed(http, gw_sim)

    response = http.get(
        f"{gw_sim.base_url}/videos/{video['id']}/content", params={"variant": variant}, headers=auth(gw_sim)
    )

    assert response.status_code == 404
    assert response.json()["error"]["message"]


def test_gateway_honours_the_idempotency_key(http: httpx.Client, gw_sim: RunningSimulator) -> None:
    headers = {**auth(gw_sim), "Idempotency-Key": "job-42"}

    first = http.post(f"{gw_sim.base_url}/videos", json={"prompt": "once"}, headers=headers).json()
    second = http.post(f"{gw_sim.base_url}/videos", json={"prompt": "once"}, headers=headers).json()

    assert first["id"] == second["id"]
    assert gw_sim.creates() == 1
    assert gw_sim.jobs()[0]["idempotency_key"] == "job-42"


def test_gateway_idempotency_recovers_a_lost_create(http: httpx.Client, gw_sim: RunningSimulator) -> None:
    headers = {**auth(gw_sim), "Idempotency-Key": "lost-1"}
    gw_sim.add_fault("create", "lose_response", count=1)

    lost = http.post(f"{gw_sim.base_url}/videos", json={"prompt": "retry me"}, headers=headers)
    retried = http.post(f"{gw_sim.base_url}/videos", json={"prompt": "retry me"}, headers=headers)

    assert lost.status_code == 500
    assert retried.status_code == 200
    assert retried.json()["id"] == gw_sim.jobs()[0]["id"]
    assert gw_sim.creates() == 1


def test_openai_records_the_idempotency_key_but_does_not_deduplicate(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    headers = {**auth(api_sim), "Idempotency-Key": "job-42"}

    first = http.post(f"{api_sim.base_url}/videos", json={"prompt": "twice"}, headers=headers).json()
    second = http.post(f"{api_sim.base_url}/videos", json={"prompt": "twice"}, headers=headers).json()

    assert first["id"] != second["id"]
    assert api_sim.creates() == 2
    assert [job["idempotency_key"] for job in api_sim.jobs()] == ["job-42", "job-42"]


def test_openai_offers_no_download_url_and_no_processing_status(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video = completed(http, api_sim)
    running = create(http, api_sim, prompt="[sim:never] [sim:duration=0]").json()

    assert not {"url", "video_url", "outputs"} & set(video)
    assert http.get(f"{api_sim.base_url}/videos/{running['id']}", headers=auth(api_sim)).json()["status"] == (
        "in_progress"
    )
