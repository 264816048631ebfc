"""Housekeeping of a worker's local disk: abandoned downloads and half-written objects.

Downloads wait in ``DOWNLOAD_DIR`` only until the same worker process uploads them (at most the
upload's 45-minute schedule-to-close after a download that takes at most 15 minutes); the workflow
discards them on the holding host when an upload fails or is cancelled. A worker that died leaves
its files behind and its successor gets a new host task queue, so nothing will ever upload them:
files older than two hours are abandoned. The local storage backend writes each object to a
``.<name>.<random>.part`` file first; a worker killed mid-write leaves that behind.

The worker sweeps both at start-up and then every ten minutes (:data:`SWEEP_EVERY`). The download
sweep deletes, so it refuses to touch a directory that holds anything but downloads (a
``DOWNLOAD_DIR`` pointed at a home directory or a data folder by mistake).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import time
from datetime import timedelta
from pathlib import Path

log = logging.getLogger(__name__)

ABANDONED_AFTER = timedelta(hours=2)
SWEEP_EVERY = timedelta(minutes=10)
# A folder is left alone this long after it last changed: a download may be about to write into it.
_SETTLED = timedelta(minutes=1)
# What a download leaves: ``<video id>.mp4``, ``.thumbnail.webp`` or ``.spritesheet.jpg``, or its ``.part``.
_DOWNLOAD_FILE = re.compile(r"[^/]+\.(?:mp4|thumbnail\.webp|spritesheet\.jpg)(?:\.part)?")
# What the local storage backend writes before renaming: ``.<name>.<random>.part``.
_PARTIAL_OBJECT = re.compile(r"\..+\.part")


class NotADownloadDirectory(Exception):
    """The directory holds something a download did not leave; sweeping it could delete real data."""


def foreign_entries(directory: Path, *, limit: int = 5) -> list[str]:
    """Entries of ``directory`` that are not per-workflow folders of download files (up to ``limit``).

    A download directory holds folders only, and those hold download files only: no other files,
    no deeper folders, no symlinks.
    """
    found: list[str] = []
    for entry in directory.iterdir():
        if len(found) >= limit:
            break
        info = os.lstat(entry)
        if not stat.S_ISDIR(info.st_mode):
            found.append(entry.name)
            continue
        for inner in entry.iterdir():
            inner_info = os.lstat(inner)
            if not stat.S_ISREG(inner_info.st_mode) or not _DOWNLOAD_FILE.fullmatch(inner.name):
                found.append(f"{entry.name}/{inner.name}")
                break
    return found


def sweep_abandoned_downloads(directory: Path, *, older_than: timedelta = ABANDONED_AFTER) -> int:
    """Delete download files not modified for ``older_than``, then folders left empty and settled.

    Only files are unlinked, and a folder is removed with ``rmdir`` (which refuses a non-empty one)
    once it has not changed for a minute, so a download writing into it at this moment is never
    deleted with it.

    Returns:
        How many files were removed.

    Raises:
        NotADownloadDirectory: ``directory`` holds anything but downloads; nothing was deleted.
    """
    if not directory.is_dir():
        return 0
    strangers = foreign_entries(directory)
    if strangers:
        raise NotADownloadDirectory(
            f"refusing to sweep {directory}: it holds {', '.join(strangers)}, which no download left; "
            "give DOWNLOAD_DIR a directory of its own"
        )
    now = time.time()
    cutoff = now - older_than.total_seconds()
    removed = 0
    for folder in directory.iterdir():
        for path in folder.iterdir():
            with contextlib.suppress(OSError):  # another worker on this host removed it first
                if os.lstat(path).st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
        with contextlib.suppress(OSError):  # not empty, or gone
            if os.lstat(folder).st_mtime < now - _SETTLED.total_seconds():
                folder.rmdir()
    if removed:
        log.info("removed %d abandoned download file(s) from %s", removed, directory)
    return removed


def sweep_partial_objects(root: Path, *, older_than: timedelta = ABANDONED_AFTER) -> int:
    """Delete the local storage backend's temporary ``.<name>.<random>.part`` files older than ``older_than``.

    Returns:
        How many files were removed.
    """
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for path in root.rglob(".*.part"):
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and _PARTIAL_OBJECT.fullmatch(path.name) and info.st_mtime < cutoff:
                os.unlink(path)
                removed += 1
    if removed:
        log.info("removed %d half-written object(s) from %s", removed, root)
    return removed


def sweep(download_dir: Path, storage_dir: Path | None) -> None:
    """One housekeeping round: abandoned downloads, and half-written local objects when there is a storage dir.

    Never raises for what it finds: a refusal is logged as an error (and nothing is deleted there).
    """
    try:
        sweep_abandoned_downloads(download_dir)
    except NotADownloadDirectory as err:
        log.error("%s", err)
    except OSError as err:
        log.warning("could not sweep %s: %s", download_dir, err)
    if storage_dir is not None:
        try:
            sweep_partial_objects(storage_dir)
        except OSError as err:
            log.warning("could not sweep %s: %s", storage_dir, err)
