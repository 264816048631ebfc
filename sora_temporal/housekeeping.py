"""Start-up housekeeping for a worker's local disk.

Downloads wait in ``DOWNLOAD_DIR`` only until the same worker process uploads them (at most the
upload's 45-minute schedule-to-close after a download that takes at most 15 minutes). A worker that
died leaves its files behind and its successor gets a new host task queue, so nothing will ever
upload them: files older than that are abandoned and are removed when a worker starts.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

log = logging.getLogger(__name__)

ABANDONED_AFTER = timedelta(hours=2)


def sweep_abandoned_downloads(directory: Path, *, older_than: timedelta = ABANDONED_AFTER) -> int:
    """Delete files under ``directory`` not modified for ``older_than``, then empty folders.

    Returns:
        How many files were removed.
    """
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for path in sorted(directory.rglob("*"), reverse=True):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        except OSError:  # another worker on this host removed it first
            continue
    if removed:
        log.info("removed %d abandoned download file(s) from %s", removed, directory)
    return removed
