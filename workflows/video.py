"""VideoGenerationWorkflow: a prompt becomes a stored, catalogued video.

    submit ─▶ wait (durable timer) ─▶ check status ─┐      ┌─▶ download ─▶ upload ─▶ save: completed
               ▲                                    │ done │
               └──────────── still running ◀────────┘      ├─▶ save: failed     (Sora said so)
                                                           ├─▶ save: timed_out  (deadline passed) ─┐
                                                           └─▶ save: cancelled  (signal or Temporal cancel)
                                                                                                   │
    salvage (timed out, the Sora job may still run): check every salvage_poll_seconds, at most  ◀──┘
    salvage_window_seconds ─▶ done: download ─▶ upload ─▶ save: completed_late
                            ─▶ failed, window closed or cancelled: a note on the timed_out row

Every state change is saved to the database, so every job that reaches Sora ends there in a true
terminal state. The poll loop continues-as-new before history grows large. Once the row is saved,
the workflow ends as the job did: completed (``completed``, ``completed_late``), failed with the
error code as the failure's type (``failed``, ``timed_out``, ``rejected_budget``) or cancelled.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypedDict, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.video import VideoActivities
    from sora_temporal.errors import ErrorType, error_code, to_application_error
    from sora_temporal.notify import event_id
    from sora_temporal.search_attributes import SORA_MODEL, SORA_PROGRESS, SORA_STATUS, SORA_VIDEO_ID
    from sora_temporal.types import (
        ApplicationEvent,
        ApplicationEventType,
        CheckStatusInput,
        CheckStatusOutput,
        CleanupInput,
        DeleteRemoteInput,
        DownloadInput,
        DownloadOutput,
        JobProgress,
        JobStatus,
        PollState,
        ReferenceImageInput,
        RemoteEvent,
        RemoteStatus,
        SaveInput,
        StoredUrls,
        SubmitInput,
        UploadInput,
        VideoRequest,
        VideoResult,
        VideoWorkflowInput,
    )
    from sora_temporal.validation import InvalidVideoRequest, validate_workflow_input
    from workflows.notify import NotifyApplicationWorkflow

_T = TypeVar("_T")

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


class _LocalOptions(TypedDict, total=False):
    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    local_retry_threshold: timedelta


# The poll loop's activities run as local activities on the worker that runs the workflow: no task
# queue round trip, and one marker event in history instead of an activity's three events plus a
# workflow task's three. Short retry backoffs are waited out in the worker; longer ones (an API down
# for a while, a Retry-After) become durable timers, so the workflow task is not held open for them.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=10)
CHECK_STATUS_LOCAL: _LocalOptions = {
    "start_to_close_timeout": CHECK_STATUS["start_to_close_timeout"],
    "retry_policy": CHECK_STATUS["retry_policy"],
    "local_retry_threshold": LOCAL_RETRY_THRESHOLD,
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
    # No attempt limit, but a time limit: a database that stays down (or refuses a value) for this
    # long ends the job visibly (see ``_save_final``) instead of retrying it forever. Refusals the
    # error map knows to be permanent (DataError, IntegrityError, ProgrammingError) are not retried.
    "schedule_to_close_timeout": timedelta(minutes=30),
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
# Patches of issue 9 (workflows started before them replay as they were recorded): the input is
# validated before anything else; downloads an upload will not use are discarded on the host; a
# terminal state the catalogue refuses ends the workflow as failed after a minimal last save.
VALIDATE_INPUT = "validate-input"
DISCARD_UNUSED_DOWNLOADS = "discard-unused-downloads"
LAST_RESORT_SAVE = "last-resort-save"
# Workflows that started before this patch keep the loop they were recorded with: a remote status
# check, a save and an upsert of every search attribute per change. From it on: local activities,
# and only the search attributes that changed.
LEAN_POLL_LOOP = "lean-poll-loop"
# Patches of issue 12/13: a timed-out job whose Sora job may still run is watched for a late video
# (instead of deleted at the deadline); and the workflow ends as the job did (failed, timed out,
# refused by the budget: a failed workflow; cancelled: a cancelled one) instead of always completing.
SALVAGE_AFTER_DEADLINE = "salvage-after-deadline"
CLOSE_AS_THE_JOB_ENDED = "close-as-the-job-ended"
# Clients cancel through Temporal from these patches on; a cancellation arriving during submit waits
# for it to finish instead of cancelling the create.
SUBMIT_OUTLIVES_CANCELLATION = "submit-outlives-cancellation"
# Jobs started with ``notify_as`` (through the API, with OUTBOUND_WEBHOOK_URL set) tell the
# application how they ended, through a child workflow that outlives this one.
NOTIFY_APPLICATION = "notify-application"
# From this patch on, a run decides every patch above in its first workflow task, before any
# command. Decided lazily, a patch asked right after a local activity (the first save, the final
# save) could land in the next workflow task when a query or signal split the task around the
# activity, and such a history would not replay: on replay the activity resolves in the earlier
# task, before the patch is known. Runs without this marker keep deciding lazily, as recorded.
PATCHES_AT_START = "patches-at-start"
PATCHES = (
    VALIDATE_INPUT,
    DISCARD_UNUSED_DOWNLOADS,
    LAST_RESORT_SAVE,
    LEAN_POLL_LOOP,
    SALVAGE_AFTER_DEADLINE,
    CLOSE_AS_THE_JOB_ENDED,
    SUBMIT_OUTLIVES_CANCELLATION,
    NOTIFY_APPLICATION,
)
# Webhook event ids remembered against duplicate deliveries (the newest ones; carried across
# continue-as-new). Providers retry an event for hours at most, and a job gets one or two events.
MAX_SEEN_EVENTS = 64


def _local_activity_error(err: ApplicationError, activity_type: str) -> ActivityError:
    """``err`` (a local activity's failure) inside an ``ActivityError``, as a regular activity's arrives."""
    wrapped = ActivityError(
        err.message,
        scheduled_event_id=0,
        started_event_id=0,
        identity="",
        activity_type=activity_type,
        activity_id="",
        retry_state=None,
    )
    wrapped.__cause__ = err
    return wrapped


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
        # What the search attributes hold now, so unchanged values are not upserted again.
        self._published: dict[str, Any] = {
            key.name: info.typed_search_attributes.get(key)
            for key in (SORA_STATUS, SORA_PROGRESS, SORA_VIDEO_ID, SORA_MODEL)
        }
        self._lean: bool | None = None
        self._seen_events: dict[str, None] = dict.fromkeys(carried.seen_events if carried else ())
        self._event_pending = False
        self._budget_account = input.budget_account
        self._notify_as = input.notify_as
        self._watching_until: datetime | None = None
        self._final_saved = False
        # Every patch's decision, when this run made them at its start (``PATCHES_AT_START``).
        self._patches: dict[str, bool] | None = None

    # --- the design card ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: VideoWorkflowInput) -> VideoResult:
        if workflow.patched(PATCHES_AT_START):
            self._patches = {patch: workflow.patched(patch) for patch in PATCHES}
        try:
            result = await self._generate()
            if result.status is JobStatus.TIMED_OUT and self._watching_until is not None:
                result = await self._salvage()
        except asyncio.CancelledError:
            # Cancelled while another terminal state was being recorded (a deadline, a failure): the
            # row must still end in a true terminal state.
            if not self._final_saved and self._patched(CLOSE_AS_THE_JOB_ENDED):
                await self._cancel(
                    workflow.cancellation_reason() or "cancellation requested through Temporal"
                )
            await self._notify(completed=False)
            raise
        except ApplicationError:
            # The catalogue refused the terminal state (the row says failed) or the input cannot be keyed.
            await self._notify(completed=False)
            raise
        await self._notify(completed=result.status.is_success)
        return self._close(result)

    async def _generate(self) -> VideoResult:
        """The job from submit to its terminal row; what the workflow returned before it ended as the job did."""
        try:
            if self._video_id is None:
                if self._patched(VALIDATE_INPUT):
                    refused = self._check_input()
                    if refused is not None:
                        return await self._refuse(refused)
                await self._save(
                    SaveInput(self._workflow_id, JobStatus.SUBMITTING, request=_handed_over(self._request))
                )
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
            if code == "rejected_budget" and self._video_id is None:
                # Refused before anything was sent: nothing runs, nothing is billed.
                return await self._fail(
                    code, message, remote_may_be_running=False, status=JobStatus.REJECTED_BUDGET
                )
            return await self._fail(code, message, remote_may_be_running=self._may_still_run(err))
        except asyncio.CancelledError:
            # A Temporal cancellation request: record it like the signal, then acknowledge it.
            await self._cancel(workflow.cancellation_reason() or "cancellation requested through Temporal")
            raise

    def _close(self, result: VideoResult) -> VideoResult:
        """End the workflow as the job ended, once its row is saved (``CLOSE_AS_THE_JOB_ENDED``).

        So Temporal's own status, its filters and the Web UI tell a failed job from a completed one:
        ``failed``, ``timed_out`` and ``rejected_budget`` fail the workflow with a non-retryable
        ``ApplicationError`` whose type is the error code and whose details hold the
        :class:`VideoResult`; ``cancelled`` raises ``CancelledError`` (a workflow Temporal was asked
        to cancel ends cancelled: see :meth:`cancel`).
        """
        if result.status.is_success or not self._patched(CLOSE_AS_THE_JOB_ENDED):
            return result
        code = result.error_code or result.status.value
        message = result.error_message or f"the job ended {result.status.value}"
        if result.status is JobStatus.CANCELLED:
            raise CancelledError(message, result)
        raise ApplicationError(f"{result.status.value}: {message}", result, type=code, non_retryable=True)

    async def _notify(self, *, completed: bool) -> None:
        """Tell the application the job ended, if it asked (``notify_as``), in a child workflow.

        The child is abandoned: this workflow closes as the job ended, while the webhook is retried
        for as long as the receiver needs (``workflows.notify``). Only its start is awaited.
        """
        if self._notify_as is None or not self._patched(NOTIFY_APPLICATION):
            return
        kind = ApplicationEventType.VIDEO_COMPLETED if completed else ApplicationEventType.VIDEO_FAILED
        event = ApplicationEvent(
            event_id=event_id(self._workflow_id, kind.value),
            type=kind,
            video_id=self._notify_as,
            created_at=int(workflow.now().timestamp()),
        )
        try:
            await workflow.start_child_workflow(
                NotifyApplicationWorkflow.run,
                event,
                id=f"{self._workflow_id}-webhook",
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"{kind.value} {self._notify_as} to the application",
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("the application was already notified of %s", self._workflow_id)

    # --- signals and queries --------------------------------------------------------------------

    @workflow.signal
    def cancel(self, reason: str | None = None) -> None:
        """Stop waiting for Sora and record ``cancelled`` (or stop watching a timed-out job's late video).

        The starter and the API cancel through Temporal instead (with the reason), which ends the
        workflow as cancelled; Temporal lets a workflow end cancelled only after such a request, so
        a workflow stopped by this signal alone ends failed, with a cancellation as its failure.
        """
        if self._cancel_reason is None:
            self._cancel_reason = reason or "cancelled by user"

    @workflow.signal
    def remote_event(self, event: RemoteEvent) -> None:
        """The Videos API announced a change of the job (a webhook): check its status now.

        The event only wakes the wait; the status check decides. A repeated event id acts once.
        """
        if event.event_id in self._seen_events:
            return
        self._seen_events[event.event_id] = None
        while len(self._seen_events) > MAX_SEEN_EVENTS:
            del self._seen_events[next(iter(self._seen_events))]
        self._event_pending = True

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
            watching_until=self._watching_until,
        )

    # --- steps ------------------------------------------------------------------------------------

    async def _submit(self) -> None:
        call = workflow.execute_activity_method(
            VideoActivities.submit,
            SubmitInput(
                workflow_id=self._workflow_id, request=self._request, budget_account=self._budget_account
            ),
            summary="submit to Sora",
            **SUBMIT,
        )
        if not self._patched(SUBMIT_OUTLIVES_CANCELLATION):
            out = await call
        else:
            # A Temporal cancellation must not cut a create short: the job it makes would be paid
            # for and known to nobody. The submit finishes; then the cancellation is honoured with
            # the job's id recorded (and ``remote_may_be_running`` set, the API having no cancel).
            submitting = asyncio.ensure_future(call)
            try:
                out = await asyncio.shield(submitting)
            except asyncio.CancelledError:
                out = await submitting
                self._video_id = out.video_id
                self._submitted_at = workflow.now()
                self._status = JobStatus.QUEUED
                raise
        self._video_id = out.video_id
        self._submitted_at = workflow.now()
        self._progress = out.progress
        # The image went to Sora: its bytes (or URL) are not carried any further, nor across continue-as-new.
        self._request = _handed_over(self._request)
        await self._save(
            SaveInput(self._workflow_id, JobStatus.QUEUED, video_id=out.video_id, progress=out.progress)
        )

    async def _poll_until_finished(self) -> CheckStatusOutput:
        assert self._video_id is not None
        self._lean_loop()  # decided here at the latest, before the loop's first command
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
        schedule_to_close = max(remaining, timedelta(seconds=30))
        # An event arriving from here on may announce what this check is too early to see.
        self._event_pending = False
        try:
            if self._lean_loop():
                status = await _local(
                    workflow.execute_local_activity_method(
                        VideoActivities.check_status,
                        CheckStatusInput(video_id=self._video_id),
                        summary="check status",
                        schedule_to_close_timeout=schedule_to_close,
                        **CHECK_STATUS_LOCAL,
                    ),
                    "check_video_status",
                )
            else:
                options: _Options = {**CHECK_STATUS, "schedule_to_close_timeout": schedule_to_close}
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
        elif self._lean_loop():
            self._show_details()  # free: no history event, no search attribute
        else:
            self._show()
        return status

    @property
    def _next_wait(self) -> timedelta:
        interval = self._request.poll_interval_seconds
        fallback = self._request.webhook_fallback_seconds
        if fallback and not self._seen_events:
            # A webhook announces the end; polling is the safety net for one that never comes. After
            # an event, the status may still lag it (an event bus faster than the read path): poll.
            interval = max(interval, fallback)
        hint = self._next_poll_after
        if hint:
            # Honour the server's hint, but never hammer it faster than asked, nor wait past the deadline.
            interval = max(interval, min(hint, 60.0))
        return min(timedelta(seconds=interval), max(self._deadline_or_now() - workflow.now(), timedelta(0)))

    async def _wait(self, duration: timedelta) -> None:
        """A durable timer that a cancel signal or a webhook event cuts short."""

        def woken() -> bool:
            return self._cancel_reason is not None or self._event_pending

        if duration <= timedelta(0) or woken():
            return
        try:
            await workflow.wait_condition(woken, timeout=duration, timeout_summary="poll interval")
        except builtins.TimeoutError:
            pass

    async def _store(self, *, late: bool = False) -> VideoResult:
        """Download the finished video, upload it and record it: ``completed`` (``completed_late``).

        A late one (found by the salvage watch) leaves the ``timed_out`` row as it is until it is
        stored: the row never says more than is true.
        """
        assert self._video_id is not None
        final = JobStatus.COMPLETED_LATE if late else JobStatus.COMPLETED
        uploaded = None
        for attempt in range(1, MAX_DOWNLOADS + 1):
            if self._cancel_reason is not None:
                raise _Stop
            if late:
                self._show_details("storing the late video")
            else:
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
            try:
                if not late:
                    self._set_status(JobStatus.UPLOADING)
                    await self._save(SaveInput(self._workflow_id, JobStatus.UPLOADING))
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
                await self._discard_unused(files)
                raise
            except asyncio.CancelledError:
                await self._discard_unused(files)
                raise
        assert uploaded is not None
        self._completed_at = workflow.now()
        if late:
            self._progress = 100
        await self._save_final(
            SaveInput(
                self._workflow_id,
                final,
                progress=100,
                urls=uploaded.urls,
                byte_size=uploaded.byte_size,
                sha256=uploaded.sha256,
                remote_may_be_running=False if late else None,
            )
        )
        return VideoResult(
            workflow_id=self._workflow_id,
            status=final,
            video_id=self._video_id,
            urls=uploaded.urls,
            byte_size=uploaded.byte_size,
            sha256=uploaded.sha256,
            error_code=self._error[0] if late and self._error else None,
            error_message=self._error[1] if late and self._error else None,
        )

    async def _fail(
        self, code: str, message: str, *, remote_may_be_running: bool, status: JobStatus = JobStatus.FAILED
    ) -> VideoResult:
        self._error = (code, message)
        await self._save_final(
            SaveInput(
                self._workflow_id,
                status,
                error_code=code,
                error_message=message,
                remote_may_be_running=remote_may_be_running,
            )
        )
        return self._result(status, remote_may_be_running=remote_may_be_running)

    def _may_still_run(self, err: ActivityError) -> bool:
        """Whether a Sora job may be left running after ``err`` ended the workflow."""
        if self._video_id is None:
            # Submit gave up: only a refusal proves nothing was created.
            cause = err.cause
            return not (isinstance(cause, ApplicationError) and cause.non_retryable)
        return self._status in (JobStatus.QUEUED, JobStatus.IN_PROGRESS)

    async def _time_out(self) -> VideoResult:
        message = f"Sora did not finish within {self._request.deadline_seconds:g} s"
        window = self._request.salvage_window_seconds
        if window > 0 and self._video_id is not None and self._patched(SALVAGE_AFTER_DEADLINE):
            # The job may still finish, and it is billed if it does: the caller learns `timed_out`
            # now, and the workflow keeps watching for the video (see ``_salvage``) instead of
            # deleting the job, which would throw a video finished at this very moment away.
            self._watching_until = workflow.now() + timedelta(seconds=window)
            message += (
                f"; still watching the Sora job for a late video until "
                f"{self._watching_until.isoformat(timespec='seconds')}"
            )
            self._error = ("timed_out", message)
            await self._save_final(
                SaveInput(
                    self._workflow_id,
                    JobStatus.TIMED_OUT,
                    error_code="timed_out",
                    error_message=message,
                    remote_may_be_running=True,
                )
            )
            return self._result(JobStatus.TIMED_OUT, remote_may_be_running=True)
        self._error = ("timed_out", message)
        may_run = await self._delete_remote()
        await self._save_final(
            SaveInput(
                self._workflow_id,
                JobStatus.TIMED_OUT,
                error_code="timed_out",
                error_message=message,
                remote_may_be_running=may_run,
            )
        )
        return self._result(JobStatus.TIMED_OUT, remote_may_be_running=may_run)

    # --- salvage after the deadline ------------------------------------------------------------

    async def _salvage(self) -> VideoResult:
        """Watch a timed-out job for a late video, within its salvage window (``SALVAGE_AFTER_DEADLINE``).

        The row already says ``timed_out`` with ``remote_may_be_running``: the caller was told at
        the deadline. Every ``salvage_poll_seconds`` (sooner after a webhook event) the status check
        asks how the job stands. Completed: downloaded, stored, ``completed_late``. Failed, gone,
        the window closed, or a cancel (signal or Temporal): the ``timed_out`` row says so.
        """
        assert self._watching_until is not None
        until = self._watching_until
        poll = timedelta(seconds=self._request.salvage_poll_seconds)
        may_run = True
        try:
            while True:
                left = until - workflow.now()
                if left <= timedelta(0):
                    outcome = (
                        f"watched the Sora job for a late video for {self._request.salvage_window_seconds:g} s; "
                        "it had not finished by then"
                    )
                    break
                await self._wait(min(poll, left))
                if self._cancel_reason is not None:
                    outcome = f"stopped watching for a late video: {self._cancel_reason}"
                    break
                try:
                    status = await self._salvage_check(max(min(poll, left), timedelta(seconds=30)))
                except ActivityError as err:
                    code, message = error_code(err)
                    outcome = f"the Sora job can no longer be checked ({code}: {message})"
                    may_run = not (
                        isinstance(err.cause, ApplicationError) and err.cause.type == "SoraNotFound"
                    )
                    break
                if status is None or status.status not in (RemoteStatus.COMPLETED, RemoteStatus.FAILED):
                    continue
                may_run = False
                if status.status is RemoteStatus.FAILED:
                    code = status.error_code or "generation_failed"
                    outcome = f"the Sora job failed after the deadline ({code}: {status.error_message or 'no message'})"
                    break
                try:
                    return await self._store(late=True)
                except _Stop:
                    outcome = f"the Sora job finished after the deadline; not stored: {self._cancel_reason}"
                except ActivityError as err:
                    code, message = error_code(err)
                    outcome = f"the Sora job finished after the deadline, but its video could not be stored ({code}: {message})"
                break
        except asyncio.CancelledError:
            reason = workflow.cancellation_reason() or "cancellation requested through Temporal"
            outcome = f"stopped watching for a late video: {reason}"
        return await self._note_on_timed_out(outcome, remote_may_be_running=may_run)

    async def _salvage_check(self, timeout: timedelta) -> CheckStatusOutput | None:
        """One status check of the watch; ``None`` when it got no answer this time.

        Raises:
            ActivityError: The check was refused for good (the job is gone, the key revoked).
        """
        assert self._video_id is not None
        self._event_pending = False
        try:
            status = await _local(
                workflow.execute_local_activity_method(
                    VideoActivities.check_status,
                    CheckStatusInput(video_id=self._video_id),
                    summary="check status (late video)",
                    schedule_to_close_timeout=timeout,
                    **CHECK_STATUS_LOCAL,
                ),
                "check_video_status",
            )
        except ActivityError as err:
            if isinstance(err.cause, ApplicationError) and err.cause.non_retryable:
                raise
            return None  # unreachable for now: asked again at the next check
        self._polls += 1
        if status.download_url:
            self._download_url = status.download_url
        self._progress = max(self._progress, status.progress)
        self._show_details()
        return status

    async def _note_on_timed_out(self, note: str, *, remote_may_be_running: bool) -> VideoResult:
        """End the watch: the ``timed_out`` row (and the result) say how it ended."""
        self._watching_until = None
        message = f"Sora did not finish within {self._request.deadline_seconds:g} s; {note}"
        self._error = ("timed_out", message)
        try:
            await self._save(
                SaveInput(
                    self._workflow_id,
                    JobStatus.TIMED_OUT,
                    error_code="timed_out",
                    error_message=message,
                    remote_may_be_running=remote_may_be_running,
                )
            )
        except ActivityError:
            # The row still says timed_out, which stays true; only the note is missing.
            workflow.logger.warning("could not record how the watch for a late video ended: %s", note)
        return self._result(JobStatus.TIMED_OUT, remote_may_be_running=remote_may_be_running)

    async def _cancel(self, reason: str) -> VideoResult:
        self._error = ("cancelled", reason)
        may_run = await self._delete_remote()
        await self._save_final(
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

    async def _discard_unused(self, files: DownloadOutput) -> None:
        """Remove downloads the failed (or cancelled) upload leaves behind, on the host holding them."""
        if self._patched(DISCARD_UNUSED_DOWNLOADS):
            await self._discard(files)

    # --- input checks -----------------------------------------------------------------------------

    def _check_input(self) -> InvalidVideoRequest | None:
        """The first problem with this workflow's id or request, checked before anything is paid for.

        For callers that bypass the starter (and its exit code 2): nothing here may strand a paid
        job later. Raises for an id the catalogue cannot key a row on.
        """
        try:
            validate_workflow_input(self._workflow_id, self._request)
        except InvalidVideoRequest as err:
            if err.param == "workflow_id":
                # No row can be written under this id: the workflow itself fails, visibly.
                raise ApplicationError(
                    f"invalid request: {err.message}",
                    {"code": err.code},
                    type=ErrorType.INVALID_REQUEST,
                    non_retryable=True,
                ) from None
            return err
        return None

    async def _refuse(self, err: InvalidVideoRequest) -> VideoResult:
        """Record a refused request as ``failed`` (nothing was sent) and end."""
        code, message = error_code(to_application_error(err, operation="validate request"))
        self._error = (code, message)
        if err.param == "model":
            # Published as a search attribute with the status: a value the server may refuse would
            # fail every workflow task from here on.
            self._request = replace(self._request, model="invalid")
        await self._save_final(
            SaveInput(
                self._workflow_id,
                JobStatus.FAILED,
                request=_handed_over(self._request),
                error_code=code,
                error_message=message,
                remote_may_be_running=False,
            )
        )
        return self._result(JobStatus.FAILED)

    # --- bookkeeping ------------------------------------------------------------------------------

    async def _save(self, change: SaveInput) -> None:
        """Record a state change in the database, the search attributes and the Web UI details.

        A local activity from ``LEAN_POLL_LOOP`` on: one marker event instead of six, and no round
        trip through the task queue between a finished job and its stored row.
        """
        self._set_status(change.status)
        if change.progress is not None:
            self._saved_progress = change.progress
        if self._lean_loop():
            await _local(
                workflow.execute_local_activity_method(
                    VideoActivities.save,
                    change,
                    summary=f"save {change.status.value}",
                    start_to_close_timeout=SAVE["start_to_close_timeout"],
                    schedule_to_close_timeout=SAVE["schedule_to_close_timeout"],
                    retry_policy=SAVE["retry_policy"],
                    local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                ),
                "save_video",
            )
            return
        await workflow.execute_activity_method(
            VideoActivities.save,
            change,
            summary=f"save {change.status.value}",
            **SAVE,
        )

    async def _save_final(self, change: SaveInput) -> None:
        """Record a terminal state; when the catalogue refuses it for good, still end visibly.

        A minimal ``failed`` row (status and a message, nothing else that could be refused) is
        tried once, then the workflow fails with the reason: Temporal shows it, nothing retries.
        """
        try:
            await self._save(change)
            self._final_saved = True
        except ActivityError as err:
            if not self._patched(LAST_RESORT_SAVE):
                raise
            _, message = error_code(err)
            workflow.logger.error("the catalogue refused the %s state: %s", change.status.value, message)
            self._error = ("save_failed", f"could not record {change.status.value}: {message}")
            with contextlib.suppress(ActivityError):
                await self._save(
                    SaveInput(
                        self._workflow_id,
                        JobStatus.FAILED,
                        error_code="save_failed",
                        error_message=self._error[1],
                        remote_may_be_running=change.remote_may_be_running,
                    )
                )
            raise ApplicationError(
                self._error[1],
                {"code": "save_failed", "status": change.status.value},
                type=ErrorType.SAVE_FAILED,
                non_retryable=True,
            ) from err

    def _set_status(self, status: JobStatus) -> None:
        self._status = status
        self._show()

    def _patched(self, patch: str) -> bool:
        """Whether this run takes ``patch``'s new code path (decided at its start, or here as recorded)."""
        if self._patches is not None:
            return self._patches[patch]
        return workflow.patched(patch)

    def _lean_loop(self) -> bool:
        """Whether this run uses the lean poll loop (see ``LEAN_POLL_LOOP``); decided once per run."""
        if self._lean is None:
            self._lean = self._patched(LEAN_POLL_LOOP)
        return self._lean

    def _show(self) -> None:
        """Web UI details, and the search attributes (each upsert is a history event)."""
        self._show_details()
        if not self._publish_search_attributes:
            return
        updates: list[SearchAttributeUpdate[Any]] = [
            SORA_STATUS.value_set(self._status.value),
            SORA_PROGRESS.value_set(self._progress),
        ]
        if self._video_id:
            updates.append(SORA_VIDEO_ID.value_set(self._video_id))
        updates.append(SORA_MODEL.value_set(self._request.model))
        if self._lean_loop():
            updates = [u for u in updates if self._published.get(u.key.name) != u.value]
            if not updates:
                return
            self._published.update((u.key.name, u.value) for u in updates)
        workflow.upsert_search_attributes(updates)

    def _show_details(self, doing: str | None = None) -> None:
        parts = [f"**{self._status.value}**", f"{self._progress}%"]
        if self._video_id:
            parts.append(f"Sora job `{self._video_id}`")
        if self._polls:
            parts.append(f"{self._polls} status checks")
        if self._error:
            parts.append(f"{self._error[0]}: {self._error[1]}")
        if doing:
            parts.append(doing)
        workflow.set_current_details(" · ".join(parts))

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
                budget_account=self._budget_account,
                notify_as=self._notify_as,
                carried=PollState(
                    video_id=self._video_id,
                    submitted_at=self._submitted_at,
                    status=self._status,
                    progress=self._progress,
                    polls=self._polls,
                    download_url=self._download_url,
                    cancel_reason=self._cancel_reason,
                    started_at=self._started_at,
                    seen_events=tuple(self._seen_events),
                ),
            )
        )


def _handed_over(request: VideoRequest) -> VideoRequest:
    """``request`` without the reference image's bytes or address, which only submit needs.

    Keeps that there *was* one (an empty :class:`ReferenceImageInput`), for the row.
    """
    if not request.has_reference_image:
        return request
    return replace(request, reference=ReferenceImageInput(), reference_image=None)


async def _local(call: Awaitable[_T], activity_type: str) -> _T:
    """Await a local activity, its failures shaped like a remote activity's.

    A local activity that fails for good raises its bare ``ApplicationError`` (only its timeouts
    come inside an ``ActivityError``); wrapped (:func:`_local_activity_error`), one ``except
    ActivityError`` and :func:`~sora_temporal.errors.error_code` handle both kinds, and a refused
    answer ends the job like any failed activity instead of failing the workflow with no terminal row.
    """
    try:
        return await call
    except ApplicationError as err:
        raise _local_activity_error(err, activity_type) from err


def _host_lost(err: ActivityError) -> bool:
    """The worker holding the download died (never started the upload) or lost the files."""
    cause = err.cause
    if isinstance(cause, TimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_START:
        return True
    return isinstance(cause, ApplicationError) and cause.type == ErrorType.DOWNLOADED_FILE_MISSING
