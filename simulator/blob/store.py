"""On-disk object store behind the Vercel Blob emulator.

Layout under the root directory::

    objects/<key>.json          metadata of the pathname whose sha256 is <key>
    objects/<key>.<version>     its bytes; a new version per write, never modified in place
    tmp/                        bodies being received (renamed into objects/ when complete)
    mpu/<upload id>/meta.json   an unfinished multipart upload ...
    mpu/<upload id>/<n>.part    ... and its parts

Files are named by hash, never by pathname, so no pathname can reach outside the root. A write
becomes visible in one step (the metadata file is replaced, then the index entry), so a reader
sees either the old object or the new one, never a mix. Everything that changes the index runs on
the event loop without awaiting in between, which is what makes those steps atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

_COPY_BLOCK = 1024 * 1024


class StoreError(Exception):
    """A request the store refuses; ``code`` and ``status`` are what the API answers."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BlobRecord:
    """Metadata of one stored object."""

    pathname: str
    access: str
    size: int
    sha256: str
    content_type: str
    cache_control: str
    uploaded_at: float
    data: str
    """File name of the bytes inside ``objects/``."""

    @property
    def etag(self) -> str:
        """Quoted, content-derived entity tag."""
        return f'"{self.sha256[:32]}"'


@dataclass(frozen=True)
class Received:
    """A fully received body waiting in ``tmp/`` to be committed."""

    path: Path
    size: int
    sha256: str


@dataclass
class Upload:
    """An unfinished multipart upload."""

    upload_id: str
    key: str
    pathname: str
    access: str
    content_type: str | None
    cache_control_max_age: int | None
    allow_overwrite: bool
    created_at: float
    parts: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Part number to (etag, size)."""
    completing: bool = False


def _key(pathname: str) -> str:
    return hashlib.sha256(pathname.encode("utf-8", "surrogatepass")).hexdigest()


def _write_json(path: Path, data: object) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(temp, path)


class BlobStore:
    """Objects and multipart uploads of one emulated store, kept under ``root``.

    Args:
        root: The directory to keep everything in; created when missing. Objects written by an
            earlier run are loaded; leftovers of interrupted writes are removed.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects_dir = root / "objects"
        self.tmp_dir = root / "tmp"
        self.mpu_dir = root / "mpu"
        for directory in (self.objects_dir, self.tmp_dir, self.mpu_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, BlobRecord] = {}
        self._uploads: dict[str, Upload] = {}
        self._load()

    # --- start-up -------------------------------------------------------------------------------

    def _load(self) -> None:
        for leftover in self.tmp_dir.iterdir():
            _remove(leftover)
        referenced: set[str] = set()
        for meta in self.objects_dir.glob("*.json"):
            try:
                record = BlobRecord(**json.loads(meta.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                _remove(meta)
                continue
            if not (self.objects_dir / record.data).is_file():
                _remove(meta)
                continue
            self._index[record.pathname] = record
            referenced.add(record.data)
        for entry in self.objects_dir.iterdir():
            if entry.suffix != ".json" and entry.name not in referenced:
                # Bytes of a write that crashed before its metadata landed, or of an overwritten version.
                _remove(entry)
        for upload_dir in self.mpu_dir.iterdir():
            try:
                raw = json.loads((upload_dir / "meta.json").read_text(encoding="utf-8"))
                raw["parts"] = {int(n): (etag, size) for n, (etag, size) in raw.get("parts", {}).items()}
                raw["completing"] = False
                upload = Upload(**raw)
            except (OSError, ValueError, TypeError):
                _remove(upload_dir)
                continue
            self._uploads[upload.upload_id] = upload

    # --- objects --------------------------------------------------------------------------------

    def get(self, pathname: str) -> BlobRecord | None:
        """The object at ``pathname``, if any."""
        return self._index.get(pathname)

    def records(self) -> list[BlobRecord]:
        """Every object, sorted by pathname."""
        return [self._index[name] for name in sorted(self._index)]

    def open(self, record: BlobRecord) -> int:
        """Open the bytes of ``record`` for reading; the caller closes the descriptor.

        An open descriptor keeps working after the object is overwritten or deleted.
        """
        return os.open(self.objects_dir / record.data, os.O_RDONLY)

    async def receive(self, chunks: AsyncIterable[bytes], expected: int | None = None) -> Received:
        """Write a request body to ``tmp/``, hashing it on the way.

        Raises:
            StoreError: The body is shorter or longer than ``expected``.
        """
        path = self.tmp_dir / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            pending = bytearray()
            async for chunk in chunks:
                pending += chunk
                size += len(chunk)
                if len(pending) >= _COPY_BLOCK:
                    # Disk writes and hashing leave the loop in 1 MiB batches, so one big upload
                    # does not stall every other request.
                    await _finish_in_thread(_write_block, fd, digest, bytes(pending))
                    pending.clear()
            if pending:
                await _finish_in_thread(_write_block, fd, digest, bytes(pending))
        except BaseException:
            os.close(fd)
            _remove(path)
            raise
        os.close(fd)
        if expected is not None and size != expected:
            _remove(path)
            raise StoreError(400, "bad_request", f"body has {size} bytes, content-length said {expected}")
        return Received(path, size, digest.hexdigest())

    def discard(self, received: Received) -> None:
        """Drop a received body that will not be committed."""
        _remove(received.path)

    def commit(
        self,
        pathname: str,
        received: Received,
        *,
        access: str,
        content_type: str,
        cache_control: str,
        allow_overwrite: bool,
    ) -> BlobRecord:
        """Publish a received body as ``pathname``, replacing what was there when allowed.

        Raises:
            StoreError: The pathname exists and ``allow_overwrite`` is false.
        """
        if not allow_overwrite and pathname in self._index:
            _remove(received.path)
            raise already_exists()
        key = _key(pathname)
        data = f"{key}.{uuid.uuid4().hex}"
        os.replace(received.path, self.objects_dir / data)
        record = BlobRecord(
            pathname=pathname,
            access=access,
            size=received.size,
            sha256=received.sha256,
            content_type=content_type,
            cache_control=cache_control,
            uploaded_at=time.time(),
            data=data,
        )
        self._publish(key, record)
        return record

    def copy(
        self,
        source: BlobRecord,
        pathname: str,
        *,
        access: str,
        content_type: str,
        cache_control: str,
        allow_overwrite: bool,
    ) -> BlobRecord:
        """Store the bytes of ``source`` under ``pathname`` too (versions are immutable, so a link does)."""
        if not allow_overwrite and pathname in self._index:
            raise already_exists()
        key = _key(pathname)
        data = f"{key}.{uuid.uuid4().hex}"
        try:
            os.link(self.objects_dir / source.data, self.objects_dir / data)
        except OSError:
            shutil.copyfile(self.objects_dir / source.data, self.objects_dir / data)
        record = BlobRecord(
            pathname=pathname,
            access=access,
            size=source.size,
            sha256=source.sha256,
            content_type=content_type,
            cache_control=cache_control,
            uploaded_at=time.time(),
            data=data,
        )
        self._publish(key, record)
        return record

    def _publish(self, key: str, record: BlobRecord) -> None:
        _write_json(self.objects_dir / f"{key}.json", asdict(record))
        previous = self._index.get(record.pathname)
        self._index[record.pathname] = record
        if previous is not None and previous.data != record.data:
            _remove(self.objects_dir / previous.data)

    def delete(self, pathname: str) -> bool:
        """Remove ``pathname``; returns whether it existed."""
        record = self._index.pop(pathname, None)
        if record is None:
            return False
        _remove(self.objects_dir / f"{_key(pathname)}.json")
        _remove(self.objects_dir / record.data)
        return True

    # --- multipart uploads ----------------------------------------------------------------------

    def create_upload(
        self,
        pathname: str,
        *,
        access: str,
        content_type: str | None,
        cache_control_max_age: int | None,
        allow_overwrite: bool,
    ) -> Upload:
        """Start a multipart upload of ``pathname``."""
        upload = Upload(
            upload_id=secrets.token_urlsafe(24),
            # Like the real service's keys this is opaque to clients and contains "/", which the
            # SDK must percent-encode to fit it into a header.
            key=f"mpu/{uuid.uuid4().hex}/{pathname}",
            pathname=pathname,
            access=access,
            content_type=content_type,
            cache_control_max_age=cache_control_max_age,
            allow_overwrite=allow_overwrite,
            created_at=time.time(),
        )
        (self.mpu_dir / upload.upload_id).mkdir()
        self._save_upload(upload)
        self._uploads[upload.upload_id] = upload
        return upload

    def _save_upload(self, upload: Upload) -> None:
        raw = asdict(upload)
        raw.pop("completing")
        _write_json(self.mpu_dir / upload.upload_id / "meta.json", raw)

    def get_upload(self, upload_id: str, key: str) -> Upload:
        """The upload with this id and key.

        Raises:
            StoreError: There is none (never created, completed, or swept away).
        """
        upload = self._uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise StoreError(404, "not_found", "The multipart upload does not exist")
        return upload

    def add_part(self, upload: Upload, number: int, received: Received) -> str:
        """Keep ``received`` as part ``number`` (replacing an earlier attempt); returns its etag."""
        if self._uploads.get(upload.upload_id) is not upload or upload.completing:
            _remove(received.path)
            raise StoreError(404, "not_found", "The multipart upload does not exist")
        os.replace(received.path, self.mpu_dir / upload.upload_id / f"{number}.part")
        etag = f'"{received.sha256[:32]}"'
        upload.parts[number] = (etag, received.size)
        self._save_upload(upload)
        return etag

    def assemble(self, upload: Upload, parts: Iterable[int]) -> Received:
        """Concatenate the given parts into ``tmp/`` (blocking: run it in a thread)."""
        path = self.tmp_dir / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray(_COPY_BLOCK)
        view = memoryview(buffer)
        try:
            with open(path, "wb") as sink:
                for number in parts:
                    with open(self.mpu_dir / upload.upload_id / f"{number}.part", "rb") as source:
                        while n := source.readinto(buffer):
                            digest.update(view[:n])
                            sink.write(view[:n])
                            size += n
        except BaseException:
            _remove(path)
            raise
        return Received(path, size, digest.hexdigest())

    def drop_upload(self, upload: Upload) -> None:
        """Forget an upload and delete its parts."""
        self._uploads.pop(upload.upload_id, None)
        _remove(self.mpu_dir / upload.upload_id)

    def uploads(self) -> list[Upload]:
        """Unfinished multipart uploads."""
        return list(self._uploads.values())

    def sweep(self, max_age: float) -> int:
        """Delete multipart uploads and stray temporary files idle for more than ``max_age`` seconds.

        There is no abort call in the protocol, so this is the only way an abandoned upload's parts
        go away. Idle time counts from the last part received. Returns how many uploads went.
        """
        now = time.time()
        swept = 0
        for upload in list(self._uploads.values()):
            if upload.completing:
                continue
            try:
                last_activity = (self.mpu_dir / upload.upload_id / "meta.json").stat().st_mtime
            except OSError:
                last_activity = upload.created_at
            if now - last_activity > max_age:
                self.drop_upload(upload)
                swept += 1
        for leftover in self.tmp_dir.iterdir():
            with contextlib.suppress(OSError):
                if now - leftover.stat().st_mtime > max_age:
                    _remove(leftover)
        return swept


def already_exists() -> StoreError:
    """The error the service gives when a pathname is taken and overwriting was not allowed."""
    return StoreError(
        400,
        "bad_request",
        "This blob already exists, use `allowOverwrite: true` if you want to overwrite it. "
        "Or `addRandomSuffix: true` to generate a unique filename.",
    )


async def _finish_in_thread(fn: Callable[..., None], *args: object) -> None:
    # If the handler is cancelled mid-write, the thread must finish before the caller closes
    # the descriptor it writes to (a reused descriptor number would receive the rest).
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait({future})
        raise


def _write_block(fd: int, digest: hashlib._Hash, block: bytes) -> None:
    digest.update(block)
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view) :]


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
