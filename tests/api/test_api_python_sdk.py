"""The official ``openai`` Python SDK, pointed at the ``api`` process, gets durable jobs."""

from __future__ import annotations

import io
import os
import re

import openai
import pytest
from api_support import API_KEY_A, ApiStack, workflow_id_of
from PIL import Image

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def test_create_and_poll_completes_with_a_permanent_url(api_stack: ApiStack) -> None:
    client = api_stack.client()

    video = client.videos.create_and_poll(prompt="a paper boat in the rain", size="1280x720", seconds="4")

    assert video.status == "completed"
    assert video.progress == 100
    assert video.id.startswith("video_") and len(video.id) == len("video_") + 32
    assert (video.model, video.size, video.seconds, video.prompt) == (
        "sora-2",
        "1280x720",
        "4",
        "a paper boat in the rain",
    )
    assert video.error is None and video.expires_at is None
    assert video.completed_at is not None and video.completed_at >= video.created_at
    extra = video.model_extra or {}
    assert extra["url"] == extra["video_url"]
    assert extra["url"].startswith(api_stack.api.root_url + f"/v1/videos/{video.id}/content?token=")


def test_create_answers_queued_at_progress_zero(api_stack: ApiStack) -> None:
    video = api_stack.client().videos.create(prompt="a lighthouse in a storm")

    assert (video.status, video.progress, video.object) == ("queued", 0, "video")
    assert (video.size, video.seconds, video.model) == ("720x1280", "4", "sora-2")


def test_download_content_is_what_storage_holds(api_stack: ApiStack) -> None:
    client = api_stack.client()
    video = client.videos.create_and_poll(prompt="a kite over dunes", size="1280x720")

    mp4 = client.videos.download_content(video.id).read()
    thumbnail = client.videos.download_content(video.id, variant="thumbnail").read()
    spritesheet = client.videos.download_content(video.id, variant="spritesheet").read()

    workflow_id = workflow_id_of(video.id)
    assert mp4 == api_stack.stored_bytes(workflow_id) and mp4[4:8] == b"ftyp"
    assert thumbnail == api_stack.stored_bytes(workflow_id, "thumbnail")
    assert spritesheet == api_stack.stored_bytes(workflow_id, "spritesheet")


def test_retrieve_reads_the_job_without_calling_upstream(api_stack: ApiStack) -> None:
    client = api_stack.client()
    video = client.videos.create_and_poll(prompt="a glass of water on a table")
    before = api_stack.sim.stats()["requests"]

    again = client.videos.retrieve(video.id)

    assert again.status == "completed" and again.id == video.id
    assert api_stack.sim.stats()["requests"] == before


def test_retrieve_sends_a_poll_hint(api_stack: ApiStack) -> None:
    video = api_stack.client().videos.create(prompt="a slow pan over a city")

    raw = api_stack.client().videos.with_raw_response.retrieve(video.id)

    assert int(raw.headers["openai-poll-after-ms"]) > 0


def test_list_pages_through_the_callers_videos_newest_first(api_stack: ApiStack) -> None:
    client = api_stack.client()
    made = [client.videos.create(prompt=f"list page case {n}").id for n in range(3)]

    first = client.videos.list(limit=2)
    second = client.videos.list(limit=2, after=first.data[-1].id)
    oldest_first = client.videos.list(limit=100, order="asc")

    assert [v.id for v in first.data] == made[::-1][:2]
    assert first.has_more is True
    assert second.data[0].id == made[0]
    ids = [v.id for v in oldest_first.data]
    assert ids.index(made[0]) < ids.index(made[1]) < ids.index(made[2])


def _references(stack: ApiStack) -> set[str]:
    return {p.name for p in stack.deployment.storage_files() if p.parent.name == "references"}


def test_a_small_reference_image_is_fitted_and_travels_inline(api_stack: ApiStack) -> None:
    client = api_stack.client()
    stored_before = _references(api_stack)

    video = client.videos.create_and_poll(
        prompt="a red square comes alive",
        size="1280x720",
        input_reference=("ref.png", _png(640, 640), "image/png"),
    )

    assert video.status == "completed"
    (job,) = [j for j in api_stack.sim.jobs() if j["prompt"] == "a red square comes alive"]
    assert job["has_input_reference"] is True and job["input_reference_size"] == [1280, 720]
    assert _references(api_stack) == stored_before


def test_a_large_reference_image_travels_stored_by_content_hash(api_stack: ApiStack) -> None:
    noise = Image.frombytes("RGB", (1792, 1024), os.urandom(1792 * 1024 * 3))
    upload = io.BytesIO()
    noise.save(upload, format="PNG")
    stored_before = _references(api_stack)

    video = api_stack.client().videos.create_and_poll(
        prompt="static on an old television",
        model="sora-2-pro",
        size="1792x1024",
        input_reference=("noise.png", upload.getvalue(), "image/png"),
    )

    assert video.status == "completed"
    (job,) = [j for j in api_stack.sim.jobs() if j["prompt"] == "static on an old television"]
    assert job["input_reference_size"] == [1792, 1024]
    (added,) = _references(api_stack) - stored_before
    assert re.fullmatch(r"[0-9a-f]{64}\.jpg", added)


def test_delete_removes_a_finished_video_and_its_files(api_stack: ApiStack) -> None:
    client = api_stack.client()
    video = client.videos.create_and_poll(prompt="a video to delete")
    stored = api_stack.stored_bytes(workflow_id_of(video.id))

    deleted = client.videos.delete(video.id)

    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    assert stored
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(FileNotFoundError):
        api_stack.stored_bytes(workflow_id_of(video.id))


def test_errors_raise_the_sdks_exception_classes(api_stack: ApiStack) -> None:
    client = api_stack.client()

    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="bad size", size="999x999")
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        api_stack.client(key="sk-not-a-key").videos.list()
    with pytest.raises(openai.NotFoundError) as missing:
        client.videos.retrieve("video_" + "0" * 32)

    assert bad.value.status_code == 400 and bad.value.param == "size"
    assert unauthenticated.value.status_code == 401 and unauthenticated.value.code == "invalid_api_key"
    assert missing.value.status_code == 404 and missing.value.type == "invalid_request_error"
    assert API_KEY_A not in str(unauthenticated.value)
