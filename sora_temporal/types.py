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

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED})


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


@dataclass(frozen=True)
class VideoRequest:
    """What the user asked for.

    Attributes:
        prompt: Text prompt for the video.
        model: Model name; the known Sora models are validated strictly, others only loosely.
        size: ``WIDTHxHEIGHT``.
        seconds: Clip duration in seconds.
        reference_image: Optional path or http(s) URL of an image to start from; it is resized and
            centre-cropped to ``size`` before upload.
        poll_interval_seconds: Durable timer between status checks.
        deadline_seconds: Give up (``timed_out``) this long after submission.
        max_polls_per_run: Continue-as-new after this many status checks, to bound history.
    """

    prompt: str
    model: str = DEFAULT_MODEL
    size: str = DEFAULT_SIZE
    seconds: int = DEFAULT_SECONDS
    reference_image: str | None = None
    poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_polls_per_run: int = DEFAULT_MAX_POLLS_PER_RUN


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


@dataclass(frozen=True)
class VideoWorkflowInput:
    """Input of :class:`workflows.video.VideoGenerationWorkflow`."""

    request: VideoRequest
    carried: PollState | None = None


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


# --- activity inputs and outputs -------------------------------------------------------------


@dataclass(frozen=True)
class SubmitInput:
    workflow_id: str
    request: VideoRequest


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
