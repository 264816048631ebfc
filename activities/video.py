"""The video activities: each one verb, all sharing the clients a worker holds.

Registered once in ``worker.py``. Every failure leaves through :func:`sora_temporal.errors.to_application_error`,
so retry decisions live in one place; the activities raise typed exceptions that say what happened.
Blocking file work (writes, hashing, checks, deletes) runs in threads, so the event loop that every
async activity and its heartbeats share never stalls.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.heartbeat import heartbeating
from sora_temporal.blocking import in_thread
from sora_temporal.db import VideoCatalog
from sora_temporal.errors import (
    ContentUnavailable,
    DownloadedFileMissing,
    NotAnMp4,
    TruncatedDownload,
    application_errors,
)
from sora_temporal.images import load_reference
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
CHUNK_SIZE = 1024 * 1024
VARIANT_FILES = {"video": "mp4", "thumbnail": "thumbnail.webp", "spritesheet": "spritesheet.jpg"}
VARIANT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}


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
        # Heartbeats while the create waits on the network: a worker that dies mid-call is noticed
        # at the heartbeat timeout, and the next attempt adopts what this one may have created.
        async with heartbeating():
            with application_errors("create video"):
                return await self._submit(input)

    async def _submit(self, input: SubmitInput) -> SubmitOutput:
        req = input.request
        info = activity.info()
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
        log.info("created Sora job %s for workflow %s", video.id, input.workflow_id)
        return SubmitOutput(video_id=video.id, status=video.status, progress=video.progress)

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
            claimed = await in_thread(self.catalog.claimed_by_other, video.id, input.workflow_id)
            if not claimed:
                log.warning(
                    "adopting Sora job %s created by an earlier attempt of %s", video.id, input.workflow_id
                )
                return SubmitOutput(video_id=video.id, status=video.status, progress=video.progress)
        return None

    # --- check status -------------------------------------------------------------------------

    @activity.defn(name="check_video_status")
    async def check_status(self, input: CheckStatusInput) -> CheckStatusOutput:
        """One status request; ``processing`` counts as ``in_progress``."""
        with application_errors(f"check status of {input.video_id}"):
            got = await self.sora.retrieve(input.video_id)
        video = got.video
        return CheckStatusOutput(
            video_id=video.id,
            status=video.status,
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
        async with heartbeating() as progress:
            with application_errors(f"download {input.video_id}"):
                await in_thread(folder.mkdir, parents=True, exist_ok=True)
                video = await self._download_variant(input, "video", folder, progress.report)
                thumbnail = await self._optional_variant(input, "thumbnail", folder, progress.report)
                spritesheet = await self._optional_variant(input, "spritesheet", folder, progress.report)
        return DownloadOutput(
            host_task_queue=self.settings.host_task_queue,
            video=video,
            thumbnail=thumbnail,
            spritesheet=spritesheet,
        )

    async def _optional_variant(
        self, input: DownloadInput, variant: str, folder: Path, on_progress: Callable[[int], None]
    ) -> DownloadedFile | None:
        """A variant the endpoint may not offer: recorded as absent when it does not."""
        try:
            return await self._download_variant(input, variant, folder, on_progress)
        except ContentUnavailable:
            return None

    async def _download_variant(
        self, input: DownloadInput, variant: str, folder: Path, on_progress: Callable[[int], None]
    ) -> DownloadedFile:
        target = folder / f"{safe_segment(input.video_id)}.{VARIANT_FILES[variant]}"
        url = input.download_url if variant == "video" else None
        sink: _PartialFile | None = None
        try:
            async with self.sora.stream_content(input.video_id, variant=variant, url=url) as stream:
                sink = await in_thread(_PartialFile, target)
                async for chunk in stream.aiter_bytes(CHUNK_SIZE):
                    await in_thread(sink.write, chunk)
                    on_progress(sink.size)
                content_type = stream.content_type or VARIANT_TYPES[variant]
                expected = stream.content_length
            if expected is not None and sink.size != expected:
                raise TruncatedDownload(
                    f"download of {input.video_id} {variant} was cut short: {sink.size} of {expected} bytes"
                )
            if variant == "video" and not await in_thread(sink.looks_like_mp4):
                raise NotAnMp4(f"the content of {input.video_id} is not an MP4 file")
            path = await in_thread(sink.keep)
        except BaseException as err:
            if sink is not None:
                await in_thread(sink.discard)
            if isinstance(err, SoraNotFound):
                raise ContentUnavailable(
                    f"the video content of {input.video_id} is no longer available (expired or deleted): "
                    f"{err.message}"
                ) from err
            raise
        return DownloadedFile(
            variant=variant,
            path=str(path),
            content_type=content_type.split(";")[0].strip(),
            byte_size=sink.size,
            sha256=sink.sha256,
        )

    # --- upload -------------------------------------------------------------------------------

    @activity.defn(name="upload_video")
    async def upload(self, input: UploadInput) -> UploadOutput:
        """Store the downloaded files; runs on the worker that holds them (its host task queue)."""
        files = input.files
        present = [item for item in (files.video, files.thumbnail, files.spritesheet) if item is not None]
        async with heartbeating() as progress:
            with application_errors(f"upload {input.video_id}"):
                await in_thread(_check_present, present)
                urls: dict[str, tuple[str, str]] = {}
                for item in present:
                    pathname = object_pathname(
                        "videos", input.workflow_id, f"{input.video_id}.{VARIANT_FILES[item.variant]}"
                    )
                    stored = await self.storage.put_file(
                        Path(item.path), pathname, item.content_type, on_progress=progress.report
                    )
                    urls[item.variant] = (stored.url, stored.download_url)
        await in_thread(_discard, files)
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
        with application_errors("save video row"):
            self.catalog.save(input)

    # --- delete -------------------------------------------------------------------------------

    @activity.defn(name="delete_remote_video")
    async def delete_remote(self, input: DeleteRemoteInput) -> DeleteRemoteOutput:
        """Delete the Sora job where the API allows it (completed or failed jobs only).

        There is no cancel call: a job still queued or running cannot be stopped, so the answer says
        whether it may still be running (and billing).
        """
        with application_errors(f"delete {input.video_id}"):
            try:
                got = await self.sora.retrieve(input.video_id)
            except SoraNotFound:
                return DeleteRemoteOutput(remote_may_be_running=False)
            if got.video.status not in (RemoteStatus.COMPLETED, RemoteStatus.FAILED):
                return DeleteRemoteOutput(remote_may_be_running=True)
            try:
                await self.sora.delete(input.video_id)
            except SoraNotFound:
                pass  # already gone
            return DeleteRemoteOutput(remote_may_be_running=False)

    def all(self) -> list[Callable[..., Any]]:
        """Activities for the shared task queue."""
        return [self.submit, self.check_status, self.download, self.save, self.delete_remote]

    def host_bound(self) -> list[Callable[..., Any]]:
        """Activities that must run where the downloaded files are."""
        return [self.upload, self.discard_downloads]

    async def aclose(self) -> None:
        """Close the clients and dispose of the database engine; for the worker's shutdown."""
        try:
            await self.sora.aclose()
        finally:
            try:
                await self.storage.aclose()
            finally:
                self.catalog.close()


def _matches(video: Video, prompt: str, model: str, size: str, seconds: int) -> bool:
    # Gateways may omit fields from list entries; compare what is there.
    if video.prompt is not None and video.prompt != prompt:
        return False
    if video.model is not None and video.model != model:
        return False
    if video.size is not None and video.size != size:
        return False
    return video.seconds is None or str(video.seconds) == str(seconds)


class _PartialFile:
    """A download being written to ``<target>.part`` and hashed as it arrives.

    Its methods block (disk and hashing); activities call them through :func:`in_thread`.
    """

    def __init__(self, target: Path) -> None:
        self._target = target
        self._partial = target.with_name(target.name + ".part")
        self._file = self._partial.open("wb")
        self._digest = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        """Hex digest of the bytes written so far."""
        return self._digest.hexdigest()

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    def looks_like_mp4(self) -> bool:
        """Whether the file starts like an ISO media file (an ``ftyp`` box)."""
        self._file.close()
        with self._partial.open("rb") as f:
            head = f.read(12)
        return len(head) == 12 and head[4:8] == b"ftyp"

    def keep(self) -> Path:
        """Move the complete file into place; returns its absolute path."""
        self._file.close()
        self._partial.replace(self._target)
        return self._target.resolve()

    def discard(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)


def _check_present(files: list[DownloadedFile]) -> None:
    for item in files:
        if not Path(item.path).is_file():
            raise DownloadedFileMissing(f"{item.path} is not on this host any more; download again")


def _discard(files: DownloadOutput) -> None:
    for item in (files.video, files.thumbnail, files.spritesheet):
        if item is not None:
            Path(item.path).unlink(missing_ok=True)
    folder = Path(files.video.path).parent
    if folder.is_dir() and not any(folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)
