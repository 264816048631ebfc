"""A starting worker removes downloads that no worker will ever upload."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sora_temporal.housekeeping import ABANDONED_AFTER, sweep_abandoned_downloads


def _file(path: Path, age_seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_files_older_than_any_upload_could_wait_are_removed_with_their_folders(tmp_path: Path) -> None:
    old = _file(tmp_path / "wf-1" / "video_1.mp4.part", ABANDONED_AFTER.total_seconds() + 60)

    removed = sweep_abandoned_downloads(tmp_path)

    assert removed == 1
    assert not old.exists() and not old.parent.exists()


def test_recent_downloads_are_left_for_their_upload(tmp_path: Path) -> None:
    fresh = _file(tmp_path / "wf-2" / "video_2.mp4", 60)

    removed = sweep_abandoned_downloads(tmp_path)

    assert removed == 0 and fresh.exists()


def test_a_missing_download_directory_is_not_an_error(tmp_path: Path) -> None:
    assert sweep_abandoned_downloads(tmp_path / "absent") == 0
