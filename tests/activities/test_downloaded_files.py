"""Downloaded files: private, never written through a planted symlink, never left half a set, and
only ever uploaded or deleted from under this worker's download directory.

The activities run in an ``ActivityEnvironment`` against the Sora simulator, a local store and a
SQLite catalogue; anyone who can schedule activities on the host queue writes their inputs.
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from sora_temporal.errors import ErrorType
from sora_temporal.storage.base import unique_name
from sora_temporal.types import (
    CleanupInput,
    DownloadedFile,
    DownloadInput,
    DownloadOutput,
    RemoteStatus,
    UploadInput,
)
from support import Stack


async def _finished_job(stack: Stack, prompt: str) -> str:
    video = await stack.activities.sora.create(prompt=prompt, model="sora-2", size="1280x720", seconds=4)
    async with asyncio.timeout(30):
        while (await stack.activities.sora.retrieve(video.id)).video.status is not RemoteStatus.COMPLETED:
            await asyncio.sleep(0.05)
    return video.id


def _file(path: Path, variant: str = "video") -> DownloadedFile:
    return DownloadedFile(
        variant=variant, path=str(path), content_type="video/mp4", byte_size=1, sha256="0" * 64
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_downloads_are_private_to_the_worker(stack: Stack) -> None:
    video_id = await _finished_job(stack, "a private screening")

    files = await ActivityEnvironment().run(
        stack.activities.download, DownloadInput(workflow_id="wf-private", video_id=video_id)
    )

    video = Path(files.video.path)
    assert _mode(video) == 0o600
    assert _mode(video.parent) == 0o700
    assert video.parent == (stack.settings.download_dir / unique_name("wf-private")).resolve()


async def test_a_symlink_planted_at_the_partial_files_path_is_not_written_through(
    stack: Stack, tmp_path: Path
) -> None:
    video_id = await _finished_job(stack, "a planted link")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = stack.settings.download_dir / unique_name("wf-link")
    folder.mkdir(parents=True)
    (folder / f"{unique_name(video_id)}.mp4.part").symlink_to(victim)

    files = await ActivityEnvironment().run(
        stack.activities.download, DownloadInput(workflow_id="wf-link", video_id=video_id)
    )

    assert victim.read_text() == "precious"
    assert Path(files.video.path).is_file() and not Path(files.video.path).is_symlink()


async def test_a_download_that_fails_part_way_leaves_no_files(stack: Stack) -> None:
    video_id = await _finished_job(stack, "a broken thumbnail")
    stack.sim.add_fault("content", "truncate", match_variant="thumbnail")

    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(
            stack.activities.download, DownloadInput(workflow_id="wf-partial", video_id=video_id)
        )

    assert [p for p in stack.settings.download_dir.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("where", ["catalogue", "symlink", "dotdot", "relative"])
async def test_upload_refuses_a_file_outside_the_download_directory(
    stack: Stack, tmp_path: Path, where: str
) -> None:
    downloads = stack.settings.download_dir
    (downloads / "wf-x").mkdir(parents=True)
    secret = tmp_path / "sora.db"  # the SQLite catalogue lives next to the downloads
    assert secret.is_file()
    path = {
        "catalogue": secret,
        "symlink": downloads / "wf-x" / "video_1.mp4",
        "dotdot": downloads / "wf-x" / ".." / ".." / "sora.db",
        "relative": Path("sora.db"),
    }[where]
    if where == "symlink":
        path.symlink_to(secret)

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            stack.activities.upload,
            UploadInput(workflow_id="wf-x", video_id="video_1", files=DownloadOutput("q", _file(path))),
        )

    assert refused.value.type == ErrorType.UNSAFE_PATH and refused.value.non_retryable
    assert [p for p in stack.storage_dir.rglob("*") if p.is_file()] == []


def test_discard_refuses_a_file_outside_the_download_directory_and_deletes_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    secret = tmp_path / "sora.db"

    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(
            stack.activities.discard_downloads, CleanupInput(files=DownloadOutput("q", _file(secret)))
        )

    assert refused.value.type == ErrorType.UNSAFE_PATH and refused.value.non_retryable
    assert secret.is_file()


def test_discard_leaves_a_folder_another_download_is_writing_into(stack: Stack) -> None:
    folder = stack.settings.download_dir / "wf-shared"
    folder.mkdir(parents=True)
    mine, theirs = folder / "video_1.mp4", folder / "video_2.mp4.part"
    mine.write_bytes(b"x")
    theirs.write_bytes(b"y")

    ActivityEnvironment().run(
        stack.activities.discard_downloads, CleanupInput(files=DownloadOutput("q", _file(mine.resolve())))
    )

    assert not mine.exists() and theirs.read_bytes() == b"y"
