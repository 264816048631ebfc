"""The video activities: each one verb, all sharing the clients a worker holds.

Registered once in ``worker.py``. Every failure leaves through :func:`activities.errors.to_application_error`,
so retry decisions live in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import ErrorType, to_application_error
from activities.images import load_reference
from sora_temporal.db import VideoCatalog
from sora_temporal.settings import Settings
from sora_temporal.sora.client import SoraClient
from sora_temporal.sora.errors import SoraError, SoraNotFound
from sora_temporal.sora.models import Video
from sora_temporal.storage.base import Storage, object_pathname, safe_segment
from sora_temporal.types import (
    CheckStatusInput,
    CheckStatusOutput,
    CleanupInput,
    DeleteRemoteInput,
    DeleteRemoteOutput,
    DownloadedFile,
    DownloadInput,
    DownloadOutput,
    RemoteStatus,
    SaveInput,
    StoredUrls,
    SubmitInput,
    SubmitOutput,
    UploadInput,
    UploadOutput,
)
from sora_temporal.validation import parse_size, validate_request

log = logging.getLogger(__name__)

# Sora's created_at has one-second resolution and its clock is not Temporal's.
CLOCK_SKEW = timedelta(seconds=30)
# How far back the list is searched for a job an earlier attempt may have created.
MAX_LIST_PAGES = 10
HEARTBEAT_EVERY_SECONDS = 1.0
CHUNK_SIZE = 1024 * 1024
VARIANT_FILES = {"video": "mp4", "thumbnail": "thumbnail.webp", "spritesheet": "spritesheet.jpg"}
VARIANT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}


class _Heartbeat:
    """Heartbeats at most once a second with the bytes moved so far."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= HEARTBEAT_EVERY_SECONDS:
            self._last = now
            activity.heartbeat(done)


@contextlib.asynccontextmanager
async def _keep_heartbeating() -> AsyncIterator[None]:
    """Heartbeat every HEARTBEAT_EVERY_SECONDS while the body waits on the network.

    Liveness only (no details): with a heartbeat timeout, a worker that dies mid-call is noticed
    in seconds rather than at the start-to-close timeout.
    """

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class VideoActivities:
    """Activities for one worker process.

    Attributes:
        sora: Client for the Videos API (holds the API key; nothing else sees it).
        storage: Where finished files go.
        catalog: The ``videos`` table.
        settings: Paths, limits and this worker's host task queue.
    """

    sora: SoraClient
    storage: Storage
    catalog: VideoCatalog
    settings: Settings

    # --- submit -------------------------------------------------------------------------------

    @activity.defn(name="submit_video")
    async def submit(self, input: SubmitInput) -> SubmitOutput:
        """Create the Sora job, or adopt the one an earlier attempt already created.

        The Videos API has no idempotency keys, so a create that failed ambiguously (a 5xx, a reset,
        a timeout after sending) may still have made a billed job. Every retry attempt, and every
        ambiguous failure, first searches the recent jobs for one this workflow made.
        """
        async with _keep_heartbeating():
            return await self._submit(input)

    async def _submit(self, input: SubmitInput) -> SubmitOutput:
        req = input.request
        info = activity.info()
        try:
            validate_request(req.prompt, req.model, req.size, req.seconds)
            width, height = parse_size(req.size)
            reference = None
            if req.reference_image:
                reference = await load_reference(
                    req.reference_image,
                    width,
                    height,
                    max_bytes=self.settings.max_reference_image_bytes,
                    timeout=self.settings.reference_image_timeout_seconds,
                )
            not_before = info.scheduled_time - CLOCK_SKEW
            if info.attempt > 1:
                adopted = await self._find_created(input, not_before)
                if adopted is not None:
                    return adopted
            try:
                video = await self.sora.create(
                    prompt=req.prompt,
                    model=req.model,
                    size=req.size,
                    seconds=req.seconds,
                    reference=reference,
                    # Honoured by some gateways; OpenAI ignores it, hence the search above.
                    idempotency_key=f"{input.workflow_id}/{info.workflow_run_id}",
                )
            except SoraError as err:
                if err.may_have_created:
                    adopted = await self._find_created(input, not_before)
                    if adopted is not None:
                        return adopted
                raise
        except Exception as err:
            raise to_application_error(err, operation="create video") from err
        log.info("created Sora job %s for workflow %s", video.id, input.workflow_id)
        return SubmitOutput(video_id=video.id, status=video.status, progress=video.progress, adopted=False)

    async def _find_created(self, input: SubmitInput, not_before: datetime) -> SubmitOutput | None:
        """The oldest unclaimed job matching this request created since ``not_before``, if any."""
        req = input.request
        floor = not_before.timestamp()
        candidates: list[Video] = []
        after: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page = await self.sora.list(after=after, limit=100, order="desc")
            for video in page.data:
                if video.created_at is not None and video.created_at < floor:
                    break
                if _matches(video, req.prompt, req.model, req.size, req.seconds):
                    candidates.append(video)
            else:
                if page.has_more and page.last_id:
                    after = page.last_id
                    continue
            break
        for video in reversed(candidates):
            claimed = await asyncio.to_thread(self.catalog.claimed_by_other, video.id, input.workflow_id)
            if not claimed:
                log.warning(
                    "adopting Sora job %s created by an earlier attempt of %s", video.id, input.workflow_id
                )
                return SubmitOutput(
                    video_id=video.id, status=video.status, progress=video.progress, adopted=True
                )
        return None

    # --- check status -------------------------------------------------------------------------

    @activity.defn(name="check_video_status")
    async def check_status(self, input: CheckStatusInput) -> CheckStatusOutput:
        """One status request; ``processing`` counts as ``in_progress``."""
        try:
            got = await self.sora.retrieve(input.video_id)
        except Exception as err:
            raise to_application_error(err, operation=f"check status of {input.video_id}") from err
        video = got.video
        return CheckStatusOutput(
            video_id=video.id,
            status=video.status,
            raw_status=video.raw_status,
            progress=video.progress,
            error_code=video.error_code,
            error_message=video.error_message,
            download_url=video.download_url,
            poll_after_seconds=got.poll_after_seconds,
        )

    # --- download -----------------------------------------------------------------------------

    @activity.defn(name="download_video")
    async def download(self, input: DownloadInput) -> DownloadOutput:
        """Stream the MP4 (and thumbnail and spritesheet where offered) to this host's disk."""
        folder = self.settings.download_dir / safe_segment(input.workflow_id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            video = await self._download_variant(input, "video", folder)
            if video is None:  # pragma: no cover - _download_variant raises for the video itself
                raise ApplicationError(
                    "video content missing", type=ErrorType.CONTENT_UNAVAILABLE, non_retryable=True
                )
            thumbnail = await self._download_variant(input, "thumbnail", folder)
            spritesheet = await self._download_variant(input, "spritesheet", folder)
        except ApplicationError:
            # Already classified; ``raise err from err`` would make it its own cause, a cycle that
            # the SDK's failure converter recurses on until it gives up and retries the activity.
            raise
        except Exception as err:
            raise to_application_error(err, operation=f"download {input.video_id}") from err
        return DownloadOutput(
            host_task_queue=self.settings.host_task_queue,
            video=video,
            thumbnail=thumbnail,
            spritesheet=spritesheet,
        )

    async def _download_variant(
        self, input: DownloadInput, variant: str, folder: Path
    ) -> DownloadedFile | None:
        target = folder / f"{safe_segment(input.video_id)}.{VARIANT_FILES[variant]}"
        partial = target.with_name(target.name + ".part")
        url = input.download_url if variant == "video" else None
        digest = hashlib.sha256()
        received = 0
        beat = _Heartbeat()
        try:
            async with self.sora.stream_content(input.video_id, variant=variant, url=url) as stream:
                with partial.open("wb") as out:
                    async for chunk in stream.aiter_bytes(CHUNK_SIZE):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        beat(received)
                content_type = stream.content_type or VARIANT_TYPES[variant]
                expected = stream.content_length
        except SoraNotFound as err:
            partial.unlink(missing_ok=True)
            if variant != "video":
                return None  # the endpoint does not offer this variant: recorded as absent
            raise ApplicationError(
                f"the video content of {input.video_id} is no longer available (expired or deleted): {err.message}",
                {"code": "content_expired"},
                type=ErrorType.CONTENT_UNAVAILABLE,
                non_retryable=True,
            ) from err
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if expected is not None and received != expected:
            partial.unlink(missing_ok=True)
            raise ApplicationError(
                f"download of {input.video_id} {variant} was cut short: {received} of {expected} bytes",
                {"code": "truncated_download"},
                type=ErrorType.CORRUPT_DOWNLOAD,
            )
        if variant == "video" and not _looks_like_mp4(partial):
            partial.unlink(missing_ok=True)
            raise ApplicationError(
                f"the content of {input.video_id} is not an MP4 file",
                {"code": "not_mp4"},
                type=ErrorType.CORRUPT_DOWNLOAD,
                non_retryable=True,
            )
        partial.replace(target)
        return DownloadedFile(
            variant=variant,
            path=str(target.resolve()),
            content_type=content_type.split(";")[0].strip(),
            byte_size=received,
            sha256=digest.hexdigest(),
        )

    # --- upload -------------------------------------------------------------------------------

    @activity.defn(name="upload_video")
    async def upload(self, input: UploadInput) -> UploadOutput:
        """Store the downloaded files; runs on the worker that holds them (its host task queue)."""
        files = input.files
        for item in (files.video, files.thumbnail, files.spritesheet):
            if item is not None and not Path(item.path).is_file():
                raise ApplicationError(
                    f"{item.path} is not on this host any more; download again",
                    {"code": "downloaded_file_missing"},
                    type=ErrorType.DOWNLOADED_FILE_MISSING,
                    non_retryable=True,
                )
        beat = _Heartbeat()
        urls: dict[str, tuple[str, str]] = {}
        try:
            for item in (files.video, files.thumbnail, files.spritesheet):
                if item is None:
                    continue
                pathname = object_pathname(
                    "videos", input.workflow_id, f"{input.video_id}.{VARIANT_FILES[item.variant]}"
                )
                stored = await self.storage.put_file(
                    Path(item.path), pathname, item.content_type, on_progress=beat
                )
                urls[item.variant] = (stored.url, stored.download_url)
        except Exception as err:
            raise to_application_error(err, operation=f"upload {input.video_id}") from err
        _discard(files)
        return UploadOutput(
            urls=StoredUrls(
                video_url=urls["video"][0],
                video_download_url=urls["video"][1],
                thumbnail_url=urls.get("thumbnail", (None, None))[0],
                spritesheet_url=urls.get("spritesheet", (None, None))[0],
            ),
            byte_size=files.video.byte_size,
            sha256=files.video.sha256,
        )

    @activity.defn(name="discard_downloads")
    def discard_downloads(self, input: CleanupInput) -> None:
        """Remove downloaded files that will not be uploaded (cancellation)."""
        _discard(input.files)

    # --- save ---------------------------------------------------------------------------------

    @activity.defn(name="save_video")
    def save(self, input: SaveInput) -> None:
        """Upsert the workflow's row in the ``videos`` table."""
        try:
            self.catalog.save(input)
        except Exception as err:
            raise to_application_error(err, operation="save video row") from err

    # --- delete -------------------------------------------------------------------------------

    @activity.defn(name="delete_remote_video")
    async def delete_remote(self, input: DeleteRemoteInput) -> DeleteRemoteOutput:
        """Delete the Sora job where the API allows it (completed or failed jobs only).

        There is no cancel call: a job still queued or running cannot be stopped, so the answer says
        whether it may still be running (and billing).
        """
        try:
            got = await self.sora.retrieve(input.video_id)
        except SoraNotFound:
            return DeleteRemoteOutput(deleted=True, remote_may_be_running=False)
        except Exception as err:
            raise to_application_error(err, operation=f"look up {input.video_id}") from err
        if got.video.status not in (RemoteStatus.COMPLETED, RemoteStatus.FAILED):
            return DeleteRemoteOutput(deleted=False, remote_may_be_running=True)
        try:
            deleted = await self.sora.delete(input.video_id)
        except SoraNotFound:
            deleted = True
        except Exception as err:
            raise to_application_error(err, operation=f"delete {input.video_id}") from err
        return DeleteRemoteOutput(deleted=deleted, remote_may_be_running=False)

    def all(self) -> list[Callable[..., Any]]:
        """Activities for the shared task queue."""
        return [self.submit, self.check_status, self.download, self.save, self.delete_remote]

    def host_bound(self) -> list[Callable[..., Any]]:
        """Activities that must run where the downloaded files are."""
        return [self.upload, self.discard_downloads]


def _matches(video: Video, prompt: str, model: str, size: str, seconds: int) -> bool:
    # Gateways may omit fields from list entries; compare what is there.
    if video.prompt is not None and video.prompt != prompt:
        return False
    if video.model is not None and video.model != model:
        return False
    if video.size is not None and video.size != size:
        return False
    return video.seconds is None or str(video.seconds) == str(seconds)


def _looks_like_mp4(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(12)
    return len(head) == 12 and head[4:8] == b"ftyp"


def _discard(files: DownloadOutput) -> None:
    for item in (files.video, files.thumbnail, files.spritesheet):
        if item is not None:
            Path(item.path).unlink(missing_ok=True)
    folder = Path(files.video.path).parent
    if folder.is_dir() and not any(folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)
