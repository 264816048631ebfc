"""A storage backend on the local filesystem, for development and single-host deployments."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from sora_temporal.blocking import in_thread
from sora_temporal.storage.base import (
    ObjectInfo,
    ProgressCallback,
    StorageError,
    StorageFailure,
    StoredObject,
)

_CHUNK_SIZE = 1024 * 1024


class LocalStorage:
    """Stores objects as files under ``root``, one file per pathname.

    A file only ever appears complete: bytes go to a temporary file in the destination directory
    and are renamed over the target once flushed, so a reader (or a crash) never sees half an
    object, and a retried upload simply replaces the previous copy.

    Args:
        root: Directory that holds every object; created when missing.
        public_base_url: When set, URLs are ``<public_base_url>/<pathname>`` (e.g. a static file
            server in front of ``root``) instead of ``file://`` URIs.
    """

    name = "local"

    def __init__(self, root: Path, public_base_url: str | None = None) -> None:
        self.root = Path(root).absolute()
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    def _target(self, pathname: str) -> Path:
        """Map a pathname to a file under ``root``, refusing anything that would land elsewhere."""
        relative = PurePosixPath(pathname)
        if not pathname or relative.is_absolute() or "\\" in pathname or "\x00" in pathname:
            raise StorageError(f"refusing unsafe pathname {pathname!r}", kind=StorageFailure.REJECTED)
        if any(part in ("", ".", "..") for part in pathname.split("/")):
            raise StorageError(f"refusing unsafe pathname {pathname!r}", kind=StorageFailure.REJECTED)
        root = self.root.resolve()
        # Resolving follows symlinks, so a link planted inside root cannot redirect writes outside.
        target = (root / relative).resolve()
        if target == root or not target.is_relative_to(root):
            raise StorageError(
                f"pathname {pathname!r} resolves outside the storage root", kind=StorageFailure.REJECTED
            )
        return target

    def _url(self, pathname: str, target: Path) -> str:
        if self.public_base_url is not None:
            return f"{self.public_base_url}/{quote(pathname, safe='/')}"
        return target.as_uri()

    async def put_file(
        self,
        path: Path,
        pathname: str,
        content_type: str,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> StoredObject:
        """Copy ``path`` to ``pathname`` atomically, replacing any previous copy.

        Args:
            path: The file to store.
            pathname: Where to store it, relative to ``root`` (``/``-separated).
            content_type: Recorded in the result; the filesystem itself keeps no metadata.
            on_progress: Called on the event loop with the bytes copied so far.

        Returns:
            The stored object, with ``file://`` (or public) URLs.

        Raises:
            StorageError: The pathname escapes ``root`` (``REJECTED``), the source is missing
                (``SOURCE_UNREADABLE``) or the disk failed (``DISK``).
        """
        target = self._target(pathname)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise StorageError(f"pathname {pathname!r} names a directory", kind=StorageFailure.REJECTED)
            source = os.open(path, os.O_RDONLY)
        except FileNotFoundError as err:
            raise StorageError(
                f"cannot store {path}: file not found", kind=StorageFailure.SOURCE_UNREADABLE
            ) from err
        except OSError as err:
            raise StorageError(f"cannot store {pathname!r}: {err}", kind=StorageFailure.DISK) from err
        try:
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        except OSError as err:
            os.close(source)
            raise StorageError(f"cannot store {pathname!r}: {err}", kind=StorageFailure.DISK) from err
        temp = Path(temp_name)
        copied = 0
        try:
            try:
                buffer = bytearray(_CHUNK_SIZE)
                while True:
                    # Reading and writing off the loop keeps heartbeats flowing on slow disks;
                    # the progress callback runs back on the loop, where activity APIs live.
                    n = await in_thread(_copy_chunk, source, fd, buffer)
                    if n == 0:
                        break
                    copied += n
                    if on_progress is not None:
                        on_progress(copied)
                await in_thread(os.fsync, fd)
            finally:
                os.close(source)
                os.close(fd)
            os.chmod(temp, 0o644)
            os.replace(temp, target)
            _fsync_dir(target.parent)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(err, OSError):
                raise StorageError(f"cannot store {pathname!r}: {err}", kind=StorageFailure.DISK) from err
            raise
        url = self._url(pathname, target)
        return StoredObject(
            pathname=pathname,
            url=url,
            download_url=url,
            byte_size=copied,
            content_type=content_type,
        )

    async def delete(self, pathname: str) -> None:
        """Remove ``pathname``; a missing object is not an error."""
        target = self._target(pathname)
        try:
            await in_thread(target.unlink, missing_ok=True)
        except IsADirectoryError as err:
            raise StorageError(
                f"pathname {pathname!r} names a directory", kind=StorageFailure.REJECTED
            ) from err
        except OSError as err:
            raise StorageError(f"cannot delete {pathname!r}: {err}", kind=StorageFailure.DISK) from err

    async def aclose(self) -> None:
        """Nothing to release."""

    # --- reading back -----------------------------------------------------------------------------

    def pathname_of(self, url: str) -> str | None:
        """The pathname behind a URL :meth:`put_file` returned (``file://`` or under the public base)."""
        if self.public_base_url is not None and url.startswith(self.public_base_url + "/"):
            return unquote(url[len(self.public_base_url) + 1 :])
        if not url.startswith("file://"):
            return None
        try:
            return Path(unquote(urlsplit(url).path)).relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None

    async def stat(self, pathname: str) -> ObjectInfo:
        """The object's size (the filesystem keeps no content type).

        Raises:
            StorageError: ``OBJECT_MISSING``, ``REJECTED`` for an unsafe pathname, or ``DISK``.
        """
        target = self._target(pathname)
        try:
            info = await in_thread(os.stat, target)
        except FileNotFoundError as err:
            raise StorageError(f"{pathname!r} does not exist", kind=StorageFailure.OBJECT_MISSING) from err
        except OSError as err:
            raise StorageError(f"cannot read {pathname!r}: {err}", kind=StorageFailure.DISK) from err
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"{pathname!r} is not a file", kind=StorageFailure.OBJECT_MISSING)
        return ObjectInfo(pathname=pathname, size=info.st_size, content_type=None)

    async def open_range(self, pathname: str, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Stream bytes ``[start, end)``; an object replaced meanwhile is read as it was when opened.

        Raises:
            StorageError: ``OBJECT_MISSING``, ``REJECTED`` for an unsafe pathname, or ``DISK``.
        """
        target = self._target(pathname)
        try:
            fd = os.open(target, os.O_RDONLY)
        except FileNotFoundError as err:
            raise StorageError(f"{pathname!r} does not exist", kind=StorageFailure.OBJECT_MISSING) from err
        except OSError as err:
            raise StorageError(f"cannot read {pathname!r}: {err}", kind=StorageFailure.DISK) from err
        try:
            position = start
            while position < end:
                block = await in_thread(os.pread, fd, min(_CHUNK_SIZE, end - position), position)
                if not block:
                    return
                position += len(block)
                yield block
        finally:
            os.close(fd)


def _copy_chunk(source: int, sink: int, buffer: bytearray) -> int:
    n = os.readv(source, [buffer])
    view = memoryview(buffer)[:n]
    while view:
        view = view[os.write(sink, view) :]
    return n


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets you open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
