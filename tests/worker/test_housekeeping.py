"""A worker removes downloads and half-written objects that nothing will ever use, and nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sora_temporal.housekeeping import (
    ABANDONED_AFTER,
    NotADownloadDirectory,
    sweep,
    sweep_abandoned_downloads,
    sweep_partial_objects,
)

OLD = ABANDONED_AFTER.total_seconds() + 60


def _file(path: Path, age_seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    _age(path, age_seconds)
    return path


def _age(path: Path, age_seconds: float) -> None:
    then = time.time() - age_seconds
    os.utime(path, (then, then))


def test_files_older_than_any_upload_could_wait_are_removed(tmp_path: Path) -> None:
    old = _file(tmp_path / "wf-1" / "video_1.mp4.part", OLD)
    thumbnail = _file(tmp_path / "wf-1" / "video_1.thumbnail.webp", OLD)

    removed = sweep_abandoned_downloads(tmp_path)

    assert removed == 2
    assert not old.exists() and not thumbnail.exists()


def test_an_emptied_folder_goes_once_it_has_settled(tmp_path: Path) -> None:
    _file(tmp_path / "wf-1" / "video_1.mp4", OLD)
    sweep_abandoned_downloads(tmp_path)
    assert (tmp_path / "wf-1").is_dir()  # just changed: a download may be about to write into it

    _age(tmp_path / "wf-1", 120)
    sweep_abandoned_downloads(tmp_path)

    assert not (tmp_path / "wf-1").exists()


def test_recent_downloads_are_left_for_their_upload(tmp_path: Path) -> None:
    fresh = _file(tmp_path / "wf-2" / "video_2.mp4", 60)

    removed = sweep_abandoned_downloads(tmp_path)

    assert removed == 0 and fresh.exists()


def test_a_missing_download_directory_is_not_an_error(tmp_path: Path) -> None:
    assert sweep_abandoned_downloads(tmp_path / "absent") == 0


@pytest.mark.parametrize(
    "stranger",
    ["sora.db", "notes/todo.txt", "wf-1/deeper/video_1.mp4", "wf-1/report.pdf"],
)
def test_a_directory_holding_anything_but_downloads_is_not_swept(tmp_path: Path, stranger: str) -> None:
    download = _file(tmp_path / "wf-9" / "video_9.mp4", OLD)
    other = _file(tmp_path / stranger, OLD)

    with pytest.raises(NotADownloadDirectory, match="refusing to sweep"):
        sweep_abandoned_downloads(tmp_path)

    assert download.exists() and other.exists()


def test_a_symlink_in_the_download_directory_stops_the_sweep(tmp_path: Path) -> None:
    target = _file(tmp_path / "elsewhere" / "precious.mp4", OLD)
    downloads = tmp_path / "downloads"
    (downloads / "wf-1").mkdir(parents=True)
    (downloads / "wf-1" / "video_1.mp4").symlink_to(target)

    with pytest.raises(NotADownloadDirectory):
        sweep_abandoned_downloads(downloads)

    assert target.exists()


def test_the_round_logs_a_refusal_instead_of_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    keep = _file(home / ".bashrc", OLD)

    sweep(home, None)

    assert keep.exists()
    assert "refusing to sweep" in caplog.text


def test_half_written_local_objects_are_swept_and_complete_ones_kept(tmp_path: Path) -> None:
    partial = _file(tmp_path / "videos" / "wf-1" / ".video_1.mp4.k3j4h5.part", OLD)
    fresh_partial = _file(tmp_path / "videos" / "wf-2" / ".video_2.mp4.a1b2c3.part", 60)
    stored = _file(tmp_path / "videos" / "wf-1" / "video_1.mp4", OLD)

    removed = sweep_partial_objects(tmp_path)

    assert removed == 1
    assert not partial.exists() and fresh_partial.exists() and stored.exists()
