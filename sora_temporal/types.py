"""Data that crosses the workflow/activity boundary.

Everything here is a frozen dataclass or an enum so that it serialises through Temporal's default
data converter and stays safe to import from workflow code (no I/O, no clocks, no environment).
Secrets never appear in these types: the API key and blob token live only in the worker's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class JobStatus(StrEnum):
    """Where a video job stands, as recorded in the database and search attributes."""

    SUBMITTING = "submitting"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    DOWNLOADING = "downloading"
    UPLOADING = "uploading"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    COMPLETED_LATE = "completed_late"
    """Timed out for the caller, then finished upstream within the salvage window and was stored."""
    REJECTED_BUDGET = "rejected_budget"
    """Refused before the create: its estimated cost did not fit a daily budget. Nothing was sent."""

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_success(self) -> bool:
        """Whether the video was stored (``completed`` or ``completed_late``)."""
        return self in (JobStatus.COMPLETED, JobStatus.COMPLETED_LATE)


_TERMINAL = frozenset(
    {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.TIMED_OUT,
        JobStatus.CANCELLED,
        JobStatus.COMPLETED_LATE,
        JobStatus.REJECTED_BUDGET,
    }
)


class RemoteStatus(StrEnum):
    """A Sora job's status as the Videos API reports it, normalised across dialects."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"


DEFAULT_MODEL = "sora-2"
DEFAULT_SIZE = "1280x720"
DEFAULT_SECONDS = 4
DEFAULT_POLL_INTERVAL_SECONDS = 5.0
DEFAULT_DEADLINE_SECONDS = 300.0
DEFAULT_MAX_POLLS_PER_RUN = 500
DEFAULT_SALVAGE_POLL_SECONDS = 60.0


@dataclass(frozen=True)
class ReferenceImageInput:
    """A reference image handed to the workflow; exactly one field is set.

    The worker never opens a path named in a workflow input: whoever starts the workflow reads and
    fits the image where the user is (``sora_temporal.references.hand_over``) and hands the fitted
    JPEG over in a form any worker host can use. The bytes are not carried past submission.

    Attributes:
        jpeg_base64: The fitted JPEG itself, base64-encoded; at most 256 KiB decoded
            (``validation.INLINE_REFERENCE_MAX_BYTES``), so history payloads stay small.
        storage_key: ``references/<sha256 of the JPEG>.jpg`` in the configured storage, for a
            fitted JPEG too large to carry inline.
        url: An http(s) URL the worker fetches (within its address, size and time limits) and fits.
    """

    jpeg_base64: str | None = None
    storage_key: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class VideoRequest:
    """What the user asked for.

    Attributes:
        prompt: Text prompt for the video.
        model: Model name; the known Sora models are validated strictly, others only loosely.
        size: ``WIDTHxHEIGHT``.
        seconds: Clip duration in seconds.
        reference_image: Older form of ``reference``: only an http(s) URL is accepted now (a path
            is refused before anything is paid for).
        poll_interval_seconds: Durable timer between status checks.
        deadline_seconds: Give up (``timed_out``) this long after submission.
        max_polls_per_run: Continue-as-new after this many status checks, to bound history.
        webhook_fallback_seconds: Set when the Videos API's webhooks reach this service: a
            ``remote_event`` signal wakes the workflow at once, and status checks without one are
            this far apart (at least ``poll_interval_seconds``), so a dropped webhook still ends in a
            stored video, only later. ``None``: poll every ``poll_interval_seconds``.
        reference: Optional image to start from, handed over as bytes, a stored copy or a URL;
            it is resized and centre-cropped to ``size`` before upload.
        salvage_window_seconds: After the deadline, while the Sora job may still be running, keep
            watching it this long for a late video (downloaded and stored: ``completed_late``). The
            caller learns ``timed_out`` at the deadline all the same. ``0`` (the default here; the
            starter and the API set ``SALVAGE_WINDOW_SECONDS``) watches nothing.
        salvage_poll_seconds: Status checks during that watch are this far apart.
    """

    prompt: str
    model: str = DEFAULT_MODEL
    size: str = DEFAULT_SIZE
    seconds: int = DEFAULT_SECONDS
    reference_image: str | None = None
    poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_polls_per_run: int = DEFAULT_MAX_POLLS_PER_RUN
    webhook_fallback_seconds: float | None = None
    reference: ReferenceImageInput | None = None
    salvage_window_seconds: float = 0.0
    salvage_poll_seconds: float = DEFAULT_SALVAGE_POLL_SECONDS

    @property
    def has_reference_image(self) -> bool:
        """Whether the request starts from a reference image (in either form)."""
        return self.reference is not None or self.reference_image is not None


@dataclass(frozen=True)
class PollState:
    """State carried across continue-as-new once the job has been submitted."""

    video_id: str
    submitted_at: datetime
    status: JobStatus
    progress: int
    polls: int
    download_url: str | None = None
    cancel_reason: str | None = None
    started_at: datetime | None = None
    """When the first run started, so the query reports the job's whole age."""
    seen_events: tuple[str, ...] = ()
    """Ids of the webhook events already acted on (the newest ones), so a late duplicate acts once."""


@dataclass(frozen=True)
class RemoteEvent:
    """A webhook from the Videos API about this workflow's job (the ``remote_event`` signal).

    Only a wake-up call: the workflow checks the job's status itself and never trusts the event's
    content. Deliveries are at least once, so ``event_id`` is remembered and a duplicate acts once.

    Attributes:
        event_id: The event's id (``evt_…``, or the ``webhook-id`` header when the body has none).
        event_type: ``video.completed``, ``video.failed``, ...; for the Web UI and logs only.
    """

    event_id: str
    event_type: str = ""


@dataclass(frozen=True)
class VideoWorkflowInput:
    """Input of :class:`workflows.video.VideoGenerationWorkflow`.

    Attributes:
        request: What to generate.
        carried: State carried across continue-as-new.
        budget_account: An opaque name of who pays, for a budget of its own on top of the global one
            (the API passes ``api-key:<owner hash>``; never a key itself). ``None``: only the global
            budget applies.
        notify_as: The id the application knows the job by (the API's ``video_…`` id): when the
            job ends, a ``video.completed`` / ``video.failed`` webhook names it. ``None``: no webhook.
    """

    request: VideoRequest
    carried: PollState | None = None
    budget_account: str | None = None
    notify_as: str | None = None


class ApplicationEventType(StrEnum):
    """What an outbound webhook says happened (the Videos API's own event types)."""

    VIDEO_COMPLETED = "video.completed"
    VIDEO_FAILED = "video.failed"


@dataclass(frozen=True)
class ApplicationEvent:
    """One webhook to the application; input of the ``notify_application`` activity.

    Attributes:
        event_id: ``evt_…``, the same for every delivery attempt (the ``webhook-id`` receivers dedupe on).
        type: What happened.
        video_id: The job as the application knows it (``data.id``).
        created_at: When the job ended, in Unix seconds.
    """

    event_id: str
    type: ApplicationEventType
    video_id: str
    created_at: int


@dataclass(frozen=True)
class StoredUrls:
    """Where the stored copies live."""

    video_url: str | None = None
    video_download_url: str | None = None
    thumbnail_url: str | None = None
    spritesheet_url: str | None = None


@dataclass(frozen=True)
class VideoResult:
    """The workflow's result."""

    workflow_id: str
    status: JobStatus
    video_id: str | None = None
    urls: StoredUrls = field(default_factory=StoredUrls)
    byte_size: int | None = None
    sha256: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    remote_may_be_running: bool = False


@dataclass(frozen=True)
class JobProgress:
    """What the ``progress`` query returns."""

    workflow_id: str
    status: JobStatus
    progress: int
    video_id: str | None
    started_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    polls: int
    deadline_at: datetime | None
    error_code: str | None = None
    error_message: str | None = None
    watching_until: datetime | None = None
    """Set while a timed-out job is still watched for a late video (the salvage window's end)."""


# --- activity inputs and outputs -------------------------------------------------------------


@dataclass(frozen=True)
class SubmitInput:
    workflow_id: str
    request: VideoRequest
    budget_account: str | None = None


@dataclass(frozen=True)
class SubmitOutput:
    video_id: str
    status: RemoteStatus
    progress: int


@dataclass(frozen=True)
class CheckStatusInput:
    video_id: str


@dataclass(frozen=True)
class CheckStatusOutput:
    video_id: str
    status: RemoteStatus
    progress: int
    error_code: str | None = None
    error_message: str | None = None
    download_url: str | None = None
    poll_after_seconds: float | None = None


@dataclass(frozen=True)
class DownloadInput:
    workflow_id: str
    video_id: str
    download_url: str | None = None


@dataclass(frozen=True)
class DownloadedFile:
    variant: str
    path: str
    content_type: str
    byte_size: int
    sha256: str


@dataclass(frozen=True)
class DownloadOutput:
    host_task_queue: str
    """The task queue of the worker that holds the files; upload must run there."""
    video: DownloadedFile
    thumbnail: DownloadedFile | None = None
    spritesheet: DownloadedFile | None = None


@dataclass(frozen=True)
class UploadInput:
    workflow_id: str
    video_id: str
    files: DownloadOutput


@dataclass(frozen=True)
class UploadOutput:
    urls: StoredUrls
    byte_size: int
    sha256: str


@dataclass(frozen=True)
class SaveInput:
    """An idempotent upsert of the workflow's row; ``None`` fields are left as they are."""

    workflow_id: str
    status: JobStatus
    request: VideoRequest | None = None
    video_id: str | None = None
    progress: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    urls: StoredUrls | None = None
    byte_size: int | None = None
    sha256: str | None = None
    remote_may_be_running: bool | None = None


@dataclass(frozen=True)
class DeleteRemoteInput:
    video_id: str


@dataclass(frozen=True)
class DeleteRemoteOutput:
    remote_may_be_running: bool


@dataclass(frozen=True)
class CleanupInput:
    files: DownloadOutput
