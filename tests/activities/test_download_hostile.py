"""download_video and check_video_status against hostile content: wrong media, oversize, full disk, bad links.

The activities run in Temporal's ActivityEnvironment against a real simulator (gateway dialect, whose
status answers carry download links) over loopback; failures are checked as the error map leaves
them, with the retry decision Temporal will act on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.video import VideoActivities
from simulator.testing import RunningSimulator, start_simulator
from sora_temporal.db import VideoCatalog
from sora_temporal.settings import Settings
from sora_temporal.sora.client import SoraClient
from sora_temporal.sora.models import Video
from sora_temporal.storage.local import LocalStorage
from sora_temporal.types import CheckStatusInput, DownloadInput, DownloadOutput, RemoteStatus
from support import migrated_engine

METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
Make = Callable[..., VideoActivities]


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningSimulator]:
    with start_simulator(dialect="gateway", time_scale=0.01) as running:
        yield running


@pytest.fixture(scope="module")
def openai() -> Iterator[RunningSimulator]:
    with start_simulator(dialect="openai", time_scale=0.01) as running:
        yield running


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """``make(sim, **settings)``: the activities against ``sim``, with downloads under ``tmp_path``."""
    engine = migrated_engine(f"sqlite:///{tmp_path / 'sora.db'}")
    made: list[VideoActivities] = []

    def build(sim: RunningSimulator, **overrides: Any) -> VideoActivities:
        settings = Settings(
            database_url=str(engine.url),
            download_dir=tmp_path / "downloads",
            host_task_queue=f"host-{uuid.uuid4()}",
            **overrides,
        )
        sora = SoraClient(base_url=sim.base_url, api_key=sim.api_key, url_policy=settings.download_url_policy)
        activities = VideoActivities(
            sora=sora,
            storage=LocalStorage(tmp_path / "storage"),
            catalog=VideoCatalog(engine),
            settings=settings,
        )
        made.append(activities)
        return activities

    yield build
    for activities in made:
        await activities.sora.aclose()
    engine.dispose()


async def _finished(activities: VideoActivities, prompt: str) -> Video:
    video = await activities.sora.create(
        prompt=f"[sim:duration=1] {prompt}", model="sora-2", size="1280x720", seconds=4
    )
    deadline = time.monotonic() + 20
    while True:
        got = (await activities.sora.retrieve(video.id)).video
        if got.status is RemoteStatus.COMPLETED:
            return got
        assert time.monotonic() < deadline, f"{video.id} did not finish"
        await asyncio.sleep(0.05)


async def _download(activities: VideoActivities, video: Video, **fields: Any) -> DownloadOutput:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=1)
    request = DownloadInput(workflow_id=f"wf-{uuid.uuid4().hex[:8]}", video_id=video.id, **fields)
    result: DownloadOutput = await env.run(activities.download, request)
    return result


async def _refused(activities: VideoActivities, video: Video, **fields: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await _download(activities, video, **fields)
    return caught.value


def _code(err: ApplicationError) -> str:
    details = err.details[0] if err.details else {}
    return str(details.get("code")) if isinstance(details, dict) else ""


def _files(activities: VideoActivities) -> list[Path]:
    root = activities.settings.download_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- magic bytes and fixed content types ------------------------------------------------------------


async def test_a_wrong_thumbnail_or_spritesheet_is_dropped_and_the_video_kept(
    make: Make, openai: RunningSimulator
) -> None:
    activities = make(openai)
    tag = uuid.uuid4().hex[:8]
    video = await _finished(activities, f"wrong pictures {tag}")
    openai.add_fault(
        "content",
        "wrong_media",
        media="png",
        content_type="image/webp",
        match_variant="thumbnail",
        match_prompt=tag,
    )
    openai.add_fault(
        "content",
        "wrong_media",
        media="html",
        content_type="image/jpeg",
        match_variant="spritesheet",
        match_prompt=tag,
    )

    out = await _download(activities, video)

    assert (out.thumbnail, out.spritesheet) == (None, None)
    assert out.video.content_type == "video/mp4"
    assert _files(activities) == [Path(out.video.path)]


async def test_stored_content_types_are_fixed_per_variant_never_the_servers(
    make: Make, openai: RunningSimulator
) -> None:
    activities = make(openai)
    tag = uuid.uuid4().hex[:8]
    video = await _finished(activities, f"mislabelled {tag}")
    # The right bytes under the wrong label: kept, and stored as what they are.
    openai.add_fault(
        "content",
        "wrong_media",
        media="webp",
        content_type="text/html",
        match_variant="thumbnail",
        match_prompt=tag,
    )
    openai.add_fault(
        "content",
        "wrong_media",
        media="jpeg",
        content_type="text/html",
        match_variant="spritesheet",
        match_prompt=tag,
    )

    out = await _download(activities, video)

    assert out.thumbnail is not None and out.spritesheet is not None
    assert (out.video.content_type, out.thumbnail.content_type, out.spritesheet.content_type) == (
        "video/mp4",
        "image/webp",
        "image/jpeg",
    )


async def test_a_video_that_is_not_an_mp4_fails_for_good_and_leaves_no_file(
    make: Make, openai: RunningSimulator
) -> None:
    activities = make(openai)
    tag = uuid.uuid4().hex[:8]
    video = await _finished(activities, f"sign-in page {tag}")
    openai.add_fault(
        "content",
        "wrong_media",
        media="html",
        content_type="video/mp4",
        match_variant="video",
        match_prompt=tag,
    )

    err = await _refused(activities, video)

    assert (_code(err), err.non_retryable) == ("not_mp4", True)
    assert _files(activities) == []


# --- size and disk ------------------------------------------------------------------------------------


async def test_a_video_over_the_download_limit_fails_for_good(make: Make, openai: RunningSimulator) -> None:
    activities = make(openai, download_max_bytes=1000)
    video = await _finished(activities, f"too large {uuid.uuid4().hex[:8]}")

    err = await _refused(activities, video)

    assert (_code(err), err.non_retryable) == ("download_too_large", True)
    assert _files(activities) == []


async def test_a_gzip_bomb_download_stops_at_the_limit_and_fails_for_good(
    make: Make, openai: RunningSimulator
) -> None:
    activities = make(openai, download_max_bytes=4 * 1024 * 1024)
    tag = uuid.uuid4().hex[:8]
    video = await _finished(activities, f"bomb {tag}")
    openai.add_fault("content", "gzip_bomb", size=256 * 1024 * 1024, match_variant="video", match_prompt=tag)

    err = await _refused(activities, video)

    assert (_code(err), err.non_retryable) == ("download_too_large", True)
    assert _files(activities) == []


async def test_too_little_free_disk_writes_nothing_and_is_retried_later(
    make: Make, openai: RunningSimulator
) -> None:
    activities = make(openai, download_min_free_bytes=2**62)
    video = await _finished(activities, f"full disk {uuid.uuid4().hex[:8]}")

    err = await _refused(activities, video)

    assert (err.type, _code(err), err.non_retryable) == (
        "InsufficientDiskSpace",
        "insufficient_disk_space",
        False,
    )
    assert err.next_retry_delay is not None
    assert _files(activities) == []


# --- signed download links: re-read fresh, never carried through history -------------------------


async def test_status_checks_keep_signed_download_links_out_of_history(
    make: Make, gateway: RunningSimulator
) -> None:
    activities = make(gateway)
    video = await _finished(activities, f"signed link {uuid.uuid4().hex[:8]}")
    assert video.download_url is not None and "sig=" in video.download_url

    out = await ActivityEnvironment().run(activities.check_status, CheckStatusInput(video_id=video.id))

    assert out.status is RemoteStatus.COMPLETED
    assert out.download_url is None


async def test_the_download_reads_a_fresh_link_and_ignores_one_in_its_input(
    make: Make, gateway: RunningSimulator
) -> None:
    activities = make(gateway)
    video = await _finished(activities, f"fresh link {uuid.uuid4().hex[:8]}")
    before = gateway.stats()["requests"]

    out = await _download(activities, video, download_url=METADATA)

    after = gateway.stats()["requests"]
    assert out.video.byte_size > 0
    assert (after["retrieve"] - before["retrieve"], after["files"] - before["files"]) == (1, 1)


async def test_a_download_link_to_the_metadata_address_fails_the_download_for_good(
    make: Make, gateway: RunningSimulator
) -> None:
    activities = make(gateway)
    tag = uuid.uuid4().hex[:8]
    gateway.add_fault("retrieve", "download_url", url=METADATA, match_prompt=tag)
    video = await _finished(activities, f"metadata link {tag}")

    err = await _refused(activities, video)

    assert (_code(err), err.non_retryable) == ("unsafe_url", True)
    assert "refused to fetch http://169.254.169.254/" in err.message
    assert _files(activities) == []
