"""The official ``openai`` SDK talks to the simulator and parses every answer into its own types."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import av
import openai
import pytest
from openai.types import Video, VideoDeleteResponse
from PIL import Image

from simulator.testing import RunningSimulator

# The SDK marks every videos method deprecated (the hosted service shuts down); the protocol lives on.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


def test_create_returns_a_queued_video_of_the_sdk_type(client: openai.OpenAI) -> None:
    video = client.videos.create(prompt="a red fox in snow", model="sora-2", seconds="4", size="1280x720")

    assert isinstance(video, Video)
    assert video.id.startswith("video_")
    assert video.object == "video"
    assert video.status == "queued"
    assert video.progress == 0
    assert (video.model, video.seconds, video.size, video.prompt) == (
        "sora-2",
        "4",
        "1280x720",
        "a red fox in snow",
    )
    assert video.completed_at is None and video.expires_at is None and video.error is None
    assert video.remixed_from_video_id is None


def test_create_uses_the_documented_defaults(client: openai.OpenAI) -> None:
    video = client.videos.create(prompt="defaults")

    assert (video.model, video.seconds, video.size) == ("sora-2", "4", "720x1280")


def test_create_with_an_input_reference_file_records_its_size(
    client: openai.OpenAI, api_sim: RunningSimulator, make_image: Callable[..., bytes]
) -> None:
    reference = make_image(1280, 720, "PNG")

    video = client.videos.create(
        prompt="start from this frame", size="1280x720", input_reference=("ref.png", reference, "image/png")
    )

    assert video.status == "queued"
    [job] = api_sim.jobs()
    assert job["id"] == video.id
    assert job["has_input_reference"] is True
    assert job["input_reference_size"] == [1280, 720]


def test_retrieve_returns_the_same_video(client: openai.OpenAI) -> None:
    created = client.videos.create(prompt="retrieve me")

    fetched = client.videos.retrieve(created.id)

    assert isinstance(fetched, Video)
    assert fetched.id == created.id
    assert fetched.status in ("queued", "in_progress", "completed")


def test_create_and_poll_ends_completed_with_timestamps(client: openai.OpenAI) -> None:
    video = client.videos.create_and_poll(prompt="a paper boat on a pond", seconds="4")

    assert video.status == "completed"
    assert video.progress == 100
    assert video.completed_at is not None and video.expires_at is not None
    assert video.completed_at >= video.created_at
    assert video.expires_at >= video.completed_at + 1


def test_list_pages_newest_first_with_after_and_limit(client: openai.OpenAI) -> None:
    ids = [client.videos.create(prompt=f"clip {n}").id for n in range(5)]
    newest_first = list(reversed(ids))

    first = client.videos.list(limit=2)
    second = client.videos.list(limit=2, after=first.last_id)
    everything = [video.id for video in client.videos.list(limit=2)]

    assert [video.id for video in first.data] == newest_first[:2]
    assert first.has_more is True
    assert all(isinstance(video, Video) for video in first.data)
    assert [video.id for video in second.data] == newest_first[2:4]
    assert everything == newest_first


def test_list_in_ascending_order(client: openai.OpenAI) -> None:
    ids = [client.videos.create(prompt=f"asc {n}").id for n in range(3)]

    page = client.videos.list(order="asc", limit=10)

    assert [video.id for video in page.data] == ids
    assert page.has_more is False


def test_download_video_is_a_playable_mp4_of_the_requested_shape(
    client: openai.OpenAI, api_sim: RunningSimulator, tmp_path: Path
) -> None:
    video = client.videos.create(prompt="a lighthouse at dusk", size="1280x720", seconds="4")
    api_sim.force_job(video.id, status="completed")

    content = client.videos.download_content(video.id, variant="video")
    path = tmp_path / "clip.mp4"
    content.write_to_file(path)

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert stream.codec_context.name == "h264"
        assert container.duration is not None
        assert abs(container.duration / av.time_base - 4.0) <= 0.5
        assert sum(1 for _ in container.decode(stream)) > 0


def test_download_thumbnail_is_webp_and_spritesheet_is_jpeg(
    client: openai.OpenAI, api_sim: RunningSimulator
) -> None:
    video = client.videos.create(prompt="thumbs", size="720x1280")
    api_sim.force_job(video.id, status="completed")

    thumbnail = client.videos.download_content(video.id, variant="thumbnail")
    spritesheet = client.videos.download_content(video.id, variant="spritesheet")

    assert thumbnail.response.headers["content-type"] == "image/webp"
    assert spritesheet.response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert image.format == "WEBP"
        assert image.size == (720, 1280)
    with Image.open(io.BytesIO(spritesheet.content)) as image:
        assert image.format == "JPEG"


def test_two_jobs_of_the_same_shape_get_different_mp4_bytes(
    client: openai.OpenAI, api_sim: RunningSimulator
) -> None:
    first = client.videos.create(prompt="one")
    second = client.videos.create(prompt="two")
    for video in (first, second):
        api_sim.force_job(video.id, status="completed")

    assert (
        client.videos.download_content(first.id).content != client.videos.download_content(second.id).content
    )


def test_remix_creates_a_new_job_pointing_at_its_source(
    client: openai.OpenAI, api_sim: RunningSimulator
) -> None:
    source = client.videos.create(prompt="original", size="1280x720", seconds="8")
    api_sim.force_job(source.id, status="completed")

    remix = client.videos.remix(source.id, prompt="same, but at night")

    assert isinstance(remix, Video)
    assert remix.id != source.id
    assert remix.remixed_from_video_id == source.id
    assert (remix.prompt, remix.size, remix.seconds, remix.status) == (
        "same, but at night",
        "1280x720",
        "8",
        "queued",
    )


def test_remix_of_an_unfinished_video_is_a_bad_request(client: openai.OpenAI) -> None:
    source = client.videos.create(prompt="still rendering [sim:never]")

    with pytest.raises(openai.BadRequestError):
        client.videos.remix(source.id, prompt="too early")


def test_delete_of_a_completed_video_returns_the_sdk_type_and_it_is_gone(
    client: openai.OpenAI, api_sim: RunningSimulator
) -> None:
    video = client.videos.create(prompt="delete me")
    api_sim.force_job(video.id, status="completed")

    deleted = client.videos.delete(video.id)

    assert isinstance(deleted, VideoDeleteResponse)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    assert video.id not in [v.id for v in client.videos.list().data]


def test_invalid_seconds_raise_bad_request_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(prompt="five seconds", seconds="5")  # type: ignore[arg-type]

    assert caught.value.status_code == 400
    assert caught.value.param == "seconds"


def test_wrong_size_reference_raises_bad_request_error(
    client: openai.OpenAI, make_image: Callable[..., bytes]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(
            prompt="mismatch", size="720x1280", input_reference=("ref.png", make_image(640, 480), "image/png")
        )

    assert "Inpaint image must match the requested width and height" in caught.value.message


def test_wrong_key_raises_authentication_error(api_sim: RunningSimulator) -> None:
    with (
        openai.OpenAI(base_url=api_sim.base_url, api_key="sk-wrong-key-0000", max_retries=0) as wrong,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        wrong.videos.list()

    assert caught.value.code == "invalid_api_key"


def test_missing_key_raises_authentication_error(api_sim: RunningSimulator) -> None:
    with (
        openai.OpenAI(base_url=api_sim.base_url, api_key="unused", max_retries=0) as anonymous,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        anonymous.videos.list(extra_headers={"Authorization": openai.Omit()})

    assert caught.value.code == "missing_api_key"


def test_unknown_id_raises_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.videos.retrieve("video_0123456789abcdef")

    assert caught.value.status_code == 404


def test_rate_limit_fault_raises_rate_limit_error(client: openai.OpenAI, api_sim: RunningSimulator) -> None:
    api_sim.add_fault("create", "rate_limit", count=1, retry_after=2)

    with pytest.raises(openai.RateLimitError) as caught:
        client.videos.create(prompt="too fast")

    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "2000"
    assert api_sim.creates() == 0
