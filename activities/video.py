"""The video activities: each one verb, all sharing the clients a worker holds.

Registered once in ``worker.py``. Every failure leaves through :func:`sora_temporal.errors.to_application_error`,
so retry decisions live in one place; the activities raise typed exceptions that say what happened.
Blocking file work (writes, hashing, checks, deletes) runs in threads, so the event loop that every
async activity and its heartbeats share never stalls.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.heartbeat import heartbeating
from sora_temporal import metrics
from sora_temporal.blocking import in_thread
from sora_temporal.budget import ALL_JOBS, BudgetExceeded, Ledger, Limit
from sora_temporal.db import MAX_ERROR_CODE_CHARS, VideoCatalog, clean_text
from sora_temporal.errors import (
    ClaimedElsewhere,
    ContentUnavailable,
    DownloadedFileMissing,
    DownloadTooLarge,
    InsufficientDiskSpace,
    NotAnMp4,
    TruncatedDownload,
    UnsafePath,
    WebhooksNotConfigured,
    WrongMedia,
    application_errors,
)
from sora_temporal.logs import video_context
from sora_temporal.notify import Notifier
from sora_temporal.pricing import Estimate
from sora_temporal.references import receive
from sora_temporal.settings import Settings
from sora_temporal.sora.client import SoraClient
from sora_temporal.sora.errors import SoraError, SoraNotFound, SoraResponseTooLarge, SoraUnsafeResponse
from sora_temporal.sora.models import Video
from sora_temporal.storage.base import Storage, object_pathname, unique_name
from sora_temporal.types import (
    ApplicationEvent,
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
from sora_temporal.validation import validate_workflow_input

log = logging.getLogger(__name__)

# Sora's created_at has one-second resolution and its clock is not Temporal's.
CLOCK_SKEW = timedelta(seconds=30)
# How far back the list is searched for a job an earlier attempt may have created.
MAX_LIST_PAGES = 10
CHUNK_SIZE = 1024 * 1024
VARIANT_FILES = {"video": "mp4", "thumbnail": "thumbnail.webp", "spritesheet": "spritesheet.jpg"}
# Stored with these types whatever the server's Content-Type said (never text/html in a public store).
VARIANT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}
# A thumbnail or spritesheet is a few hundred kilobytes; far more is not one.
MAX_IMAGE_VARIANT_BYTES = 64 * 1024 * 1024
# Free space is checked again after every this many bytes written (another download may share the disk).
DISK_CHECK_EVERY_BYTES = 64 * 1024 * 1024
# Downloads are private to the worker's user: nobody else on the host needs to read them.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


@dataclass
class VideoActivities:
    """Activities for one worker process.

    Attributes:
        sora: Client for the Videos API (holds the API key; nothing else sees it).
        storage: Where finished files go.
        catalog: The ``videos`` table.
        settings: Paths, limits and this worker's host task queue.
        notifier: Sends webhooks to the application (holds their URL and secret); ``None`` when
            ``OUTBOUND_WEBHOOK_URL`` is not set.
    """

    sora: SoraClient
    storage: Storage
    catalog: VideoCatalog
    settings: Settings
    notifier: Notifier | None = None

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
        # The workflow checks this too; checked again for old workflows and direct callers.
        validate_workflow_input(input.workflow_id, req)
        reference = await receive(
            req,
            storage=self.storage,
            max_bytes=self.settings.max_reference_image_bytes,
            timeout=self.settings.reference_image_timeout_seconds,
            policy=self.settings.reference_url_policy,
            max_pixels=self.settings.reference_image_max_pixels,
        )
        claimed = await in_thread(self.catalog.claimed_video, input.workflow_id)
        if claimed is not None:
            # An earlier attempt created (or adopted) this job and claimed it, then died before
            # returning. The status checks that follow say where it stands.
            log.warning("Sora job %s was already claimed by %s; using it", claimed, input.workflow_id)
            return SubmitOutput(video_id=claimed, status=RemoteStatus.QUEUED, progress=0)
        # Before anything that may cost money (a create, or adopting what an earlier attempt may
        # have created): a refusal leaves nothing reserved and makes no call to the Videos API.
        estimate = self.settings.spend.prices.estimate(req.model, req.size, req.seconds)
        await in_thread(self._reserve, input, estimate)
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
            else:
                # A clean refusal: nothing was created, so nothing is spent. A job that may exist
                # stays counted (it may be billed).
                await in_thread(Ledger(self.catalog.engine).release, input.workflow_id)
            raise
        # Claimed before returning: from here on no other workflow's search can adopt it.
        if not await in_thread(self.catalog.claim, input.workflow_id, video.id):
            # Another workflow's search adopted this job between its creation and now (it sent the
            # same request and its own create failed ambiguously): its job, if it made one, is ours.
            # Never another create: that would pay twice.
            adopted = await self._find_created(input, not_before)
            if adopted is not None:
                return adopted
            raise ClaimedElsewhere(
                f"Sora job {video.id} is owned by another workflow (it adopted the job, or the API "
                "answered with a job it already holds); not creating another one"
            )
        log.info(
            "created Sora job %s for workflow %s", video.id, input.workflow_id, extra={"video_id": video.id}
        )
        metrics.JOBS_SUBMITTED.labels(req.model).inc()
        metrics.VIDEO_SECONDS_SUBMITTED.labels(req.model).inc(req.seconds)
        metrics.ESTIMATED_SPEND_USD.labels(req.model).inc(float(estimate.usd))
        return SubmitOutput(video_id=video.id, status=video.status, progress=video.progress)

    def _reserve(self, input: SubmitInput, estimate: Estimate) -> None:
        """Reserve the job's estimated cost under every daily budget it falls under, or refuse it.

        Raises:
            BudgetExceeded: A budget would be passed (nothing reserved, nothing sent).
        """
        spend = self.settings.spend
        limits = [Limit(ALL_JOBS, spend.budget_usd_per_day)]
        if input.budget_account:
            limits.append(Limit(input.budget_account, spend.api_key_budget_usd_per_day))
        req = input.request
        try:
            Ledger(self.catalog.engine).reserve(
                input.workflow_id,
                model=req.model,
                seconds=req.seconds,
                cost_micros=estimate.micros,
                limits=limits,
                account=input.budget_account,
            )
        except BudgetExceeded as err:
            metrics.BUDGET_REFUSALS.labels("global" if err.account == ALL_JOBS else "account").inc()
            self.catalog.set_estimated_cost(input.workflow_id, float(estimate.usd))
            log.warning("workflow %s refused: %s", input.workflow_id, err)
            raise

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
            # The claim is atomic (a unique index): two workflows can never adopt one job.
            if await in_thread(self.catalog.claim, input.workflow_id, video.id):
                log.warning(
                    "adopting Sora job %s created by an earlier attempt of %s", video.id, input.workflow_id
                )
                return SubmitOutput(video_id=video.id, status=video.status, progress=video.progress)
        return None

    # --- check status -------------------------------------------------------------------------

    @activity.defn(name="check_video_status")
    async def check_status(self, input: CheckStatusInput) -> CheckStatusOutput:
        """One status request; ``processing`` counts as ``in_progress``."""
        started = time.monotonic()
        outcome = "error"
        try:
            with video_context(input.video_id), application_errors(f"check status of {input.video_id}"):
                got = await self.sora.retrieve(input.video_id)
            outcome = "ok"
        finally:
            metrics.STATUS_CHECK_SECONDS.labels(outcome).observe(time.monotonic() - started)
        video = got.video
        return CheckStatusOutput(
            video_id=video.id,
            status=video.status,
            progress=video.progress,
            error_code=None
            if video.error_code is None
            else clean_text(video.error_code, MAX_ERROR_CODE_CHARS),
            error_message=None if video.error_message is None else clean_text(video.error_message),
            # Signed download links stay out of history: download_video reads a fresh one itself.
            download_url=None,
            poll_after_seconds=got.poll_after_seconds,
        )

    # --- download -----------------------------------------------------------------------------

    @activity.defn(name="download_video")
    async def download(self, input: DownloadInput) -> DownloadOutput:
        """Stream the MP4 (and thumbnail and spritesheet where offered) to this host's disk."""
        kept: list[DownloadedFile | None] = []
        async with heartbeating() as progress:
            with video_context(input.video_id), application_errors(f"download {input.video_id}"):
                try:
                    folder = await in_thread(
                        _private_folder, self.settings.download_dir, unique_name(input.workflow_id)
                    )
                    url = await self._fresh_download_url(input.video_id)
                    video = await self._download_variant(input, "video", folder, progress.report, url)
                    kept.append(video)
                    thumbnail = await self._optional_variant(input, "thumbnail", folder, progress.report)
                    kept.append(thumbnail)
                    spritesheet = await self._optional_variant(input, "spritesheet", folder, progress.report)
                except BaseException:
                    # Nothing will upload a partial set (cancellation included): leave no files behind.
                    _unlink_quietly(kept)
                    raise
        return DownloadOutput(
            host_task_queue=self.settings.host_task_queue,
            video=video,
            thumbnail=thumbnail,
            spritesheet=spritesheet,
        )

    async def _fresh_download_url(self, video_id: str) -> str | None:
        """The download link of the job's current status, if it has one (gateways).

        Read here rather than carried from the status check, so a signed link never travels
        through workflow history and is never stale by the time it is used.
        """
        try:
            got = await self.sora.retrieve(video_id)
        except SoraNotFound as err:
            raise ContentUnavailable(
                f"the video {video_id} is no longer available (expired or deleted): {err.message}"
            ) from err
        return got.video.download_url

    async def _optional_variant(
        self, input: DownloadInput, variant: str, folder: Path, on_progress: Callable[[int], None]
    ) -> DownloadedFile | None:
        """A variant the endpoint may not offer: recorded as absent when it does not.

        One that arrives wrong (not its image format, too large, or behind a refused link) is
        dropped and recorded as absent too: the video is what the job is for, and a wrong picture
        next to it must never be stored.
        """
        try:
            return await self._download_variant(input, variant, folder, on_progress)
        except ContentUnavailable:
            return None
        except (WrongMedia, DownloadTooLarge, SoraUnsafeResponse) as err:
            log.warning("dropping the %s of %s: %s", variant, input.video_id, err)
            return None

    async def _download_variant(
        self,
        input: DownloadInput,
        variant: str,
        folder: Path,
        on_progress: Callable[[int], None],
        url: str | None = None,
    ) -> DownloadedFile:
        target = folder / f"{unique_name(input.video_id)}.{VARIANT_FILES[variant]}"
        limit = self.settings.download_max_bytes
        if variant != "video":
            limit = min(limit, MAX_IMAGE_VARIANT_BYTES)
        reserve = self.settings.download_min_free_bytes
        sink: _PartialFile | None = None
        try:
            async with self.sora.stream_content(
                input.video_id, variant=variant, url=url, max_bytes=limit
            ) as stream:
                expected = stream.content_length
                await in_thread(_ensure_room, folder, expected, reserve)
                sink = await in_thread(_PartialFile, target)
                checked = 0
                async for chunk in stream.aiter_bytes(CHUNK_SIZE):
                    await in_thread(sink.write, chunk)
                    on_progress(sink.size)
                    if sink.size - checked >= DISK_CHECK_EVERY_BYTES:
                        checked = sink.size
                        await in_thread(_ensure_room, folder, None, reserve)
            if expected is not None and sink.size != expected:
                raise TruncatedDownload(
                    f"download of {input.video_id} {variant} was cut short: {sink.size} of {expected} bytes"
                )
            if not await in_thread(sink.has_signature, variant):
                if variant == "video":
                    raise NotAnMp4(f"the content of {input.video_id} is not an MP4 file")
                raise WrongMedia(f"the {variant} of {input.video_id} is not a {VARIANT_TYPES[variant]} file")
            path = await in_thread(sink.keep)
        except BaseException as err:
            if sink is not None:
                await in_thread(sink.discard)
            if isinstance(err, SoraNotFound):
                raise ContentUnavailable(
                    f"the video content of {input.video_id} is no longer available (expired or deleted): "
                    f"{err.message}"
                ) from err
            if isinstance(err, SoraResponseTooLarge):
                raise DownloadTooLarge(
                    f"the {variant} of {input.video_id} is larger than the limit of {limit} bytes"
                ) from err
            raise
        return DownloadedFile(
            variant=variant,
            path=str(path),
            content_type=VARIANT_TYPES[variant],
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
            with video_context(input.video_id), application_errors(f"upload {input.video_id}"):
                paths = await in_thread(_confined_all, self.settings.download_dir, present)
                await in_thread(_check_present, present)
                urls: dict[str, tuple[str, str]] = {}
                for item, path in zip(present, paths, strict=True):
                    pathname = object_pathname(
                        "videos", input.workflow_id, input.video_id, VARIANT_FILES[item.variant]
                    )
                    stored = await self.storage.put_file(
                        path, pathname, item.content_type, on_progress=progress.report
                    )
                    urls[item.variant] = (stored.url, stored.download_url)
                    metrics.STORED_BYTES.labels(self.storage.name, item.variant).inc(item.byte_size)
        await in_thread(_discard, self.settings.download_dir, files)
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
        """Remove downloaded files that will not be uploaded (cancellation, a failed upload).

        Only files under this worker's download directory: anything else is refused, never retried.
        """
        with application_errors("discard downloads"):
            _discard(self.settings.download_dir, input.files)

    # --- save ---------------------------------------------------------------------------------

    @activity.defn(name="save_video")
    def save(self, input: SaveInput) -> None:
        """Upsert the workflow's row in the ``videos`` table."""
        with video_context(input.video_id), application_errors("save video row"):
            self.catalog.save(input)
        if input.status.is_terminal:
            metrics.JOBS_FINISHED.labels(input.status.value).inc()

    # --- delete -------------------------------------------------------------------------------

    @activity.defn(name="delete_remote_video")
    async def delete_remote(self, input: DeleteRemoteInput) -> DeleteRemoteOutput:
        """Delete the Sora job where the API allows it (completed or failed jobs only).

        There is no cancel call: a job still queued or running cannot be stopped, so the answer says
        whether it may still be running (and billing).
        """
        with video_context(input.video_id), application_errors(f"delete {input.video_id}"):
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

    # --- notify -------------------------------------------------------------------------------

    @activity.defn(name="notify_application")
    async def notify(self, event: ApplicationEvent) -> None:
        """Deliver one signed webhook to the application (one attempt; Temporal retries).

        Raises:
            ApplicationError: The receiver refused it or could not be reached (retried unless it
                answered 410 Gone), or this worker has no webhook settings (retried).
        """
        with application_errors(f"notify the application of {event.type.value}"):
            if self.notifier is None:
                raise WebhooksNotConfigured(
                    "a job asks to notify the application, but this worker has no OUTBOUND_WEBHOOK_URL "
                    "and OUTBOUND_WEBHOOK_SECRET; set them as on the api process"
                )
            status = await self.notifier.send(event)
            log.info("delivered %s for %s (HTTP %d)", event.type.value, event.video_id, status)

    def all(self) -> list[Callable[..., Any]]:
        """Activities for the shared task queue."""
        return [self.submit, self.check_status, self.download, self.save, self.delete_remote, self.notify]

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
                try:
                    if self.notifier is not None:
                        await self.notifier.aclose()
                finally:
                    self.catalog.close()


def _matches(video: Video, prompt: str, model: str, size: str, seconds: int) -> bool:
    # The prompt must be there and equal: a gateway that leaves it out of list entries would
    # otherwise make every recent job (another application's too) look like ours. Gateways may omit
    # the other fields; those are compared where present.
    if video.prompt is None or video.prompt != prompt:
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
        # A stale part from a dead attempt is replaced. Created afresh (O_EXCL), private, and never
        # through a symlink someone planted at this predictable path.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._partial)
        fd = os.open(
            self._partial,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            PRIVATE_FILE_MODE,
        )
        self._file = os.fdopen(fd, "wb")
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

    def has_signature(self, variant: str) -> bool:
        """Whether the file starts with the magic bytes of ``variant``'s format."""
        self._file.close()
        with self._partial.open("rb") as f:
            head = f.read(12)
        return has_signature(variant, head)

    def keep(self) -> Path:
        """Move the complete file into place; returns its absolute path."""
        self._file.close()
        self._partial.replace(self._target)
        return self._target.resolve()

    def discard(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)


def has_signature(variant: str, head: bytes) -> bool:
    """Whether the first 12 bytes of a file are those of ``variant``'s format.

    MP4: an ISO media ``ftyp`` box at offset 4. WebP: ``RIFF....WEBP``. JPEG: ``FF D8 FF``.
    """
    if variant == "video":
        return len(head) >= 12 and head[4:8] == b"ftyp"
    if variant == "thumbnail":
        return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if variant == "spritesheet":
        return head[:3] == b"\xff\xd8\xff"
    return False


def _ensure_room(folder: Path, needed: int | None, reserve: int) -> None:
    """Refuse to write on when the disk would be left with less than ``reserve`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free - (needed or 0) < reserve:
        what = f"{needed} more bytes" if needed is not None else "more bytes"
        raise InsufficientDiskSpace(
            f"{free} bytes free under {folder}; {what} would leave less than the {reserve} to keep",
            needed=needed,
            free=free,
        )


def _private_folder(root: Path, name: str) -> Path:
    """``root/name``, created private (0700) when missing; refused when it is anything but a folder."""
    root.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    folder = root / name
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=PRIVATE_DIR_MODE)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"download folder {folder} is not a directory (a symlink?); refusing to write there")
    return folder


def _confined(root: Path, raw: str) -> Path:
    """``raw`` as a path that lies under ``root`` with no symlink on the way; else :class:`UnsafePath`.

    Activity inputs are data anyone who can schedule activities on this host's queue may write:
    without this, ``upload_video`` would copy out (and ``discard_downloads`` delete) any file the
    worker can read, such as the SQLite database.
    """
    base = root.resolve()
    path = Path(raw)
    if not path.is_absolute() or ".." in path.parts:
        raise UnsafePath(f"{raw!r} is not a file this worker downloaded")
    # resolve() follows every symlink: a link anywhere on the way makes the two differ.
    if path.resolve() != path or path == base or not path.is_relative_to(base):
        raise UnsafePath(f"{raw!r} is not under this worker's download directory")
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise UnsafePath(f"{raw!r} is not a regular file")
    return path


def _confined_all(root: Path, files: list[DownloadedFile]) -> list[Path]:
    return [_confined(root, item.path) for item in files]


def _check_present(files: list[DownloadedFile]) -> None:
    for item in files:
        if not Path(item.path).is_file():
            raise DownloadedFileMissing(f"{item.path} is not on this host any more; download again")


def _unlink_quietly(files: list[DownloadedFile | None]) -> None:
    for item in files:
        if item is not None:
            with contextlib.suppress(OSError):
                os.unlink(item.path)


def _discard(root: Path, files: DownloadOutput) -> None:
    """Unlink the downloaded files, then their folder if that left it empty.

    ``rmdir`` removes only an empty folder, atomically: a download that another attempt is writing
    into the same (per-workflow) folder at this moment is never deleted with it.
    """
    present = [item for item in (files.video, files.thumbnail, files.spritesheet) if item is not None]
    paths = _confined_all(root, present)
    for path in paths:
        path.unlink(missing_ok=True)
    folder = paths[0].parent
    if folder != root.resolve():
        with contextlib.suppress(OSError):
            folder.rmdir()
