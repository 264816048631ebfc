"""VideoGenerationWorkflow: a prompt becomes a stored, catalogued video.

    submit ─▶ wait (durable timer) ─▶ check status ─┐      ┌─▶ download ─▶ upload ─▶ save: completed
               ▲                                    │ done │
               └──────────── still running ◀────────┘      ├─▶ save: failed     (Sora said so)
                                                           ├─▶ save: timed_out  (deadline passed)
                                                           └─▶ save: cancelled  (signal or Temporal cancel)

Every state change is saved to the database, so every job that reaches Sora ends there in a true
terminal state. The poll loop continues-as-new before history grows large.
"""

from __future__ import annotations

import asyncio
import builtins
from datetime import datetime, timedelta
from typing import Any, TypedDict

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from activities.video import VideoActivities
    from sora_temporal.errors import ErrorType, error_code
    from sora_temporal.search_attributes import SORA_MODEL, SORA_PROGRESS, SORA_STATUS, SORA_VIDEO_ID
    from sora_temporal.types import (
        CheckStatusInput,
        CheckStatusOutput,
        CleanupInput,
        DeleteRemoteInput,
        DownloadInput,
        DownloadOutput,
        JobProgress,
        JobStatus,
        PollState,
        RemoteStatus,
        SaveInput,
        StoredUrls,
        SubmitInput,
        UploadInput,
        VideoRequest,
        VideoResult,
        VideoWorkflowInput,
    )

# --- activity options: timeouts and retries, decided here --------------------------------------


class _Options(TypedDict, total=False):
    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    schedule_to_start_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy


SUBMIT: _Options = {
    # One attempt: a reference image fetch (20 s limit) and a create (30 s HTTP timeout), plus a
    # list search on retries. The activity heartbeats every 5 s while it waits, so a dead worker is
    # noticed after the heartbeat timeout and the next attempt adopts the job the dead one may have made.
    "start_to_close_timeout": timedelta(minutes=1),
    "heartbeat_timeout": timedelta(seconds=10),
    # Bounded: a Videos API that refuses us for this long is down; the row records the failure.
    "schedule_to_close_timeout": timedelta(minutes=15),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1)),
}
CHECK_STATUS: _Options = {
    # One GET that normally answers in well under a second; a stuck one is simply asked again.
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
    ),
}
DOWNLOAD: _Options = {
    "start_to_close_timeout": timedelta(minutes=15),
    # It heartbeats every 10 s (half this) with the bytes received: a dead worker shows in 20 s. A
    # stalled stream ends at the HTTP read timeout (SORA_TIMEOUT_SECONDS).
    "heartbeat_timeout": timedelta(seconds=20),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30), maximum_attempts=6
    ),
}
UPLOAD: _Options = {
    # A dead host never picks the task up: give up quickly and download again elsewhere.
    # A live host takes the task within milliseconds; 30 s also rides out a short server blip.
    "schedule_to_start_timeout": timedelta(seconds=30),
    "start_to_close_timeout": timedelta(minutes=30),
    # It heartbeats every 10 s (half this), also while the store joins a multipart upload.
    "heartbeat_timeout": timedelta(seconds=20),
    # Sora's download links live about an hour: keep trying the store for most of that.
    "schedule_to_close_timeout": timedelta(minutes=45),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1)),
}
SAVE: _Options = {
    "start_to_close_timeout": timedelta(seconds=30),
    # No attempt limit: the row is the catalogue, it must be written eventually.
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
}
DELETE: _Options = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
}
DISCARD: _Options = {
    "schedule_to_start_timeout": timedelta(seconds=30),
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_attempts=2),
}
# A host that loses its files (or dies) between download and upload costs at most this many re-downloads.
MAX_DOWNLOADS = 3
# Progress is saved to the database when it moves this far, not on every poll.
PROGRESS_SAVE_STEP = 10


class _Stop(Exception):
    """Internal: the poll loop ends without a finished remote job (deadline or cancel)."""


@workflow.defn
class VideoGenerationWorkflow:
    """Generate one video through the Videos API and store it."""

    @workflow.init
    def __init__(self, input: VideoWorkflowInput) -> None:
        info = workflow.info()
        carried = input.carried
        self._request: VideoRequest = input.request
        self._workflow_id = info.workflow_id
        self._started_at = carried.started_at if carried and carried.started_at else workflow.now()
        self._status = carried.status if carried else JobStatus.SUBMITTING
        self._progress = carried.progress if carried else 0
        self._video_id: str | None = carried.video_id if carried else None
        self._submitted_at: datetime | None = carried.submitted_at if carried else None
        self._polls = carried.polls if carried else 0
        self._polls_this_run = 0
        self._download_url: str | None = carried.download_url if carried else None
        self._cancel_reason: str | None = carried.cancel_reason if carried else None
        self._saved_progress = self._progress
        self._next_poll_after: float | None = None
        self._completed_at: datetime | None = None
        self._error: tuple[str, str] | None = None
        # Custom search attributes are used only if the starter set them, i.e. the namespace has them.
        self._publish_search_attributes = info.typed_search_attributes.get(SORA_STATUS) is not None

    # --- the design card ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: VideoWorkflowInput) -> VideoResult:
        try:
            if self._video_id is None:
                await self._save(SaveInput(self._workflow_id, JobStatus.SUBMITTING, request=self._request))
                await self._submit()
            finished = await self._poll_until_finished()
            if finished.status is RemoteStatus.FAILED:
                return await self._fail(
                    finished.error_code or "generation_failed",
                    finished.error_message or "Sora reported the job as failed",
                    remote_may_be_running=False,
                )
            return await self._store()
        except _Stop:
            if self._cancel_reason is not None:
                return await self._cancel(self._cancel_reason)
            return await self._time_out()
        except ActivityError as err:
            code, message = error_code(err)
            return await self._fail(code, message, remote_may_be_running=self._may_still_run(err))
        except asyncio.CancelledError:
            # A Temporal cancellation request: record it like the signal, then acknowledge it.
            await self._cancel("cancellation requested through Temporal")
            raise

    # --- signals and queries --------------------------------------------------------------------

    @workflow.signal
    def cancel(self, reason: str | None = None) -> None:
        """Stop waiting for Sora and record ``cancelled``."""
        if self._cancel_reason is None:
            self._cancel_reason = reason or "cancelled by user"

    @workflow.query
    def progress(self) -> JobProgress:
        """Status, progress, Sora video id and the times so far."""
        return JobProgress(
            workflow_id=self._workflow_id,
            status=self._status,
            progress=self._progress,
            video_id=self._video_id,
            started_at=self._started_at,
            submitted_at=self._submitted_at,
            completed_at=self._completed_at,
            polls=self._polls,
            deadline_at=self._deadline(),
            error_code=self._error[0] if self._error else None,
            error_message=self._error[1] if self._error else None,
        )

    # --- steps ------------------------------------------------------------------------------------

    async def _submit(self) -> None:
        out = await workflow.execute_activity_method(
            VideoActivities.submit,
            SubmitInput(workflow_id=self._workflow_id, request=self._request),
            summary="submit to Sora",
            **SUBMIT,
        )
        self._video_id = out.video_id
        self._submitted_at = workflow.now()
        self._progress = out.progress
        await self._save(
            SaveInput(self._workflow_id, JobStatus.QUEUED, video_id=out.video_id, progress=out.progress)
        )

    async def _poll_until_finished(self) -> CheckStatusOutput:
        assert self._video_id is not None
        while True:
            if self._cancel_reason is not None:
                raise _Stop
            await self._wait(self._next_wait)
            if self._cancel_reason is not None:
                raise _Stop
            status = await self._check_status()
            if status.status in (RemoteStatus.COMPLETED, RemoteStatus.FAILED):
                return status
            if workflow.now() >= self._deadline_or_now():
                raise _Stop
            if (
                self._polls_this_run >= self._request.max_polls_per_run
                or workflow.info().is_continue_as_new_suggested()
            ):
                self._continue_as_new()

    async def _check_status(self) -> CheckStatusOutput:
        assert self._video_id is not None
        remaining = self._deadline_or_now() - workflow.now()
        # A Videos API that stays unreachable past the deadline ends the job as timed out.
        options: _Options = {
            **CHECK_STATUS,
            "schedule_to_close_timeout": max(remaining, timedelta(seconds=30)),
        }
        try:
            status = await workflow.execute_activity_method(
                VideoActivities.check_status,
                CheckStatusInput(video_id=self._video_id),
                summary="check status",
                **options,
            )
        except ActivityError as err:
            if isinstance(err.cause, TimeoutError) and err.cause.type is TimeoutType.SCHEDULE_TO_CLOSE:
                raise _Stop from err
            raise
        self._polls += 1
        self._polls_this_run += 1
        self._next_poll_after = status.poll_after_seconds
        if status.download_url:
            self._download_url = status.download_url
        self._progress = max(self._progress, status.progress)
        new_status = JobStatus.IN_PROGRESS if status.status is RemoteStatus.IN_PROGRESS else self._status
        if new_status is not self._status or self._progress - self._saved_progress >= PROGRESS_SAVE_STEP:
            await self._save(SaveInput(self._workflow_id, new_status, progress=self._progress))
        else:
            self._show()
        return status

    @property
    def _next_wait(self) -> timedelta:
        interval = self._request.poll_interval_seconds
        hint = self._next_poll_after
        if hint:
            # Honour the server's hint, but never hammer it faster than asked, nor wait past the deadline.
            interval = max(interval, min(hint, 60.0))
        return min(timedelta(seconds=interval), max(self._deadline_or_now() - workflow.now(), timedelta(0)))

    async def _wait(self, duration: timedelta) -> None:
        """A durable timer that a cancel signal cuts short."""
        if duration <= timedelta(0):
            return
        try:
            await workflow.wait_condition(
                lambda: self._cancel_reason is not None, timeout=duration, timeout_summary="poll interval"
            )
        except builtins.TimeoutError:
            pass

    async def _store(self) -> VideoResult:
        assert self._video_id is not None
        uploaded = None
        for attempt in range(1, MAX_DOWNLOADS + 1):
            if self._cancel_reason is not None:
                raise _Stop
            await self._save(SaveInput(self._workflow_id, JobStatus.DOWNLOADING, progress=100))
            files = await workflow.execute_activity_method(
                VideoActivities.download,
                DownloadInput(
                    workflow_id=self._workflow_id, video_id=self._video_id, download_url=self._download_url
                ),
                summary="download from Sora",
                **DOWNLOAD,
            )
            if self._cancel_reason is not None:
                await self._discard(files)
                raise _Stop
            self._set_status(JobStatus.UPLOADING)
            await self._save(SaveInput(self._workflow_id, JobStatus.UPLOADING))
            try:
                uploaded = await workflow.execute_activity_method(
                    VideoActivities.upload,
                    UploadInput(workflow_id=self._workflow_id, video_id=self._video_id, files=files),
                    task_queue=files.host_task_queue,
                    summary="upload to storage",
                    **UPLOAD,
                )
                break
            except ActivityError as err:
                if attempt < MAX_DOWNLOADS and _host_lost(err):
                    workflow.logger.warning(
                        "host %s lost the download; downloading again", files.host_task_queue
                    )
                    continue
                raise
        assert uploaded is not None
        self._completed_at = workflow.now()
        await self._save(
            SaveInput(
                self._workflow_id,
                JobStatus.COMPLETED,
                progress=100,
                urls=uploaded.urls,
                byte_size=uploaded.byte_size,
                sha256=uploaded.sha256,
            )
        )
        return VideoResult(
            workflow_id=self._workflow_id,
            status=JobStatus.COMPLETED,
            video_id=self._video_id,
            urls=uploaded.urls,
            byte_size=uploaded.byte_size,
            sha256=uploaded.sha256,
        )

    async def _fail(self, code: str, message: str, *, remote_may_be_running: bool) -> VideoResult:
        self._error = (code, message)
        await self._save(
            SaveInput(
                self._workflow_id,
                JobStatus.FAILED,
                error_code=code,
                error_message=message,
                remote_may_be_running=remote_may_be_running,
            )
        )
        return self._result(JobStatus.FAILED, remote_may_be_running=remote_may_be_running)

    def _may_still_run(self, err: ActivityError) -> bool:
        """Whether a Sora job may be left running after ``err`` ended the workflow."""
        if self._video_id is None:
            # Submit gave up: only a refusal proves nothing was created.
            cause = err.cause
            return not (isinstance(cause, ApplicationError) and cause.non_retryable)
        return self._status in (JobStatus.QUEUED, JobStatus.IN_PROGRESS)

    async def _time_out(self) -> VideoResult:
        message = f"Sora did not finish within {self._request.deadline_seconds:g} s"
        self._error = ("timed_out", message)
        may_run = await self._delete_remote()
        await self._save(
            SaveInput(
                self._workflow_id,
                JobStatus.TIMED_OUT,
                error_code="timed_out",
                error_message=message,
                remote_may_be_running=may_run,
            )
        )
        return self._result(JobStatus.TIMED_OUT, remote_may_be_running=may_run)

    async def _cancel(self, reason: str) -> VideoResult:
        self._error = ("cancelled", reason)
        may_run = await self._delete_remote()
        await self._save(
            SaveInput(
                self._workflow_id,
                JobStatus.CANCELLED,
                error_code="cancelled",
                error_message=reason,
                remote_may_be_running=may_run,
            )
        )
        return self._result(JobStatus.CANCELLED, remote_may_be_running=may_run)

    async def _delete_remote(self) -> bool:
        """Delete the Sora job where the API allows it; returns whether it may still be running."""
        if self._video_id is None:
            return False
        try:
            out = await workflow.execute_activity_method(
                VideoActivities.delete_remote,
                DeleteRemoteInput(video_id=self._video_id),
                summary="delete Sora job",
                **DELETE,
            )
        except ActivityError:
            return True
        return out.remote_may_be_running

    async def _discard(self, files: DownloadOutput) -> None:
        try:
            await workflow.execute_activity_method(
                VideoActivities.discard_downloads,
                CleanupInput(files=files),
                task_queue=files.host_task_queue,
                **DISCARD,
            )
        except ActivityError:
            workflow.logger.warning("could not discard downloads on %s", files.host_task_queue)

    # --- bookkeeping ------------------------------------------------------------------------------

    async def _save(self, change: SaveInput) -> None:
        """Record a state change in the database, the search attributes and the Web UI details."""
        self._set_status(change.status)
        if change.progress is not None:
            self._saved_progress = change.progress
        await workflow.execute_activity_method(
            VideoActivities.save,
            change,
            summary=f"save {change.status.value}",
            **SAVE,
        )

    def _set_status(self, status: JobStatus) -> None:
        self._status = status
        self._show()

    def _show(self) -> None:
        parts = [f"**{self._status.value}**", f"{self._progress}%"]
        if self._video_id:
            parts.append(f"Sora job `{self._video_id}`")
        if self._polls:
            parts.append(f"{self._polls} status checks")
        if self._error:
            parts.append(f"{self._error[0]}: {self._error[1]}")
        workflow.set_current_details(" · ".join(parts))
        if self._publish_search_attributes:
            updates: list[SearchAttributeUpdate[Any]] = [
                SORA_STATUS.value_set(self._status.value),
                SORA_PROGRESS.value_set(self._progress),
            ]
            if self._video_id:
                updates.append(SORA_VIDEO_ID.value_set(self._video_id))
            updates.append(SORA_MODEL.value_set(self._request.model))
            workflow.upsert_search_attributes(updates)

    def _deadline(self) -> datetime | None:
        if self._submitted_at is None:
            return None
        return self._submitted_at + timedelta(seconds=self._request.deadline_seconds)

    def _deadline_or_now(self) -> datetime:
        return self._deadline() or workflow.now()

    def _result(self, status: JobStatus, *, remote_may_be_running: bool = False) -> VideoResult:
        return VideoResult(
            workflow_id=self._workflow_id,
            status=status,
            video_id=self._video_id,
            urls=StoredUrls(),
            error_code=self._error[0] if self._error else None,
            error_message=self._error[1] if self._error else None,
            remote_may_be_running=remote_may_be_running,
        )

    def _continue_as_new(self) -> None:
        assert self._video_id is not None and self._submitted_at is not None
        workflow.continue_as_new(
            VideoWorkflowInput(
                request=self._request,
                carried=PollState(
                    video_id=self._video_id,
                    submitted_at=self._submitted_at,
                    status=self._status,
                    progress=self._progress,
                    polls=self._polls,
                    download_url=self._download_url,
                    cancel_reason=self._cancel_reason,
                    started_at=self._started_at,
                ),
            )
        )


def _host_lost(err: ActivityError) -> bool:
    """The worker holding the download died (never started the upload) or lost the files."""
    cause = err.cause
    if isinstance(cause, TimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_START:
        return True
    return isinstance(cause, ApplicationError) and cause.type == ErrorType.DOWNLOADED_FILE_MISSING
