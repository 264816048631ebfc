"""A job as the Videos protocol's video object.

The catalogue row is the record; the workflow's ``progress`` query adds live status and progress
while the row is not terminal. A job counts as finished only once its row says so: the workflow sets
its own status a moment before saving it, and ``completed`` must never be reported before the row
holds the stored video's URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio.client import WorkflowExecutionStatus

from api.jobs import Live
from api.store import JobView
from sora_temporal.types import JobStatus

ProtocolStatus = Literal["queued", "in_progress", "completed", "failed"]

_PROTOCOL: dict[JobStatus, ProtocolStatus] = {
    JobStatus.SUBMITTING: "queued",
    JobStatus.QUEUED: "queued",
    JobStatus.IN_PROGRESS: "in_progress",
    JobStatus.DOWNLOADING: "in_progress",
    JobStatus.UPLOADING: "in_progress",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.TIMED_OUT: "failed",
    JobStatus.CANCELLED: "failed",
    # Told `failed` (timed_out) at the deadline; the video arrived within the salvage window.
    JobStatus.COMPLETED_LATE: "completed",
    JobStatus.REJECTED_BUDGET: "failed",
}

# The protocol knows only ``failed``; the code says which kind.
_ERROR_CODES: dict[JobStatus, str] = {
    JobStatus.TIMED_OUT: "timed_out",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.REJECTED_BUDGET: "rejected_budget",
}

_CLOSED_CODES: dict[WorkflowExecutionStatus, str] = {
    WorkflowExecutionStatus.FAILED: "workflow_failed",
    WorkflowExecutionStatus.TERMINATED: "workflow_terminated",
    WorkflowExecutionStatus.TIMED_OUT: "workflow_timed_out",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}


@dataclass(frozen=True)
class State:
    """Where a job stands, in the protocol's words."""

    status: ProtocolStatus
    progress: int
    error: dict[str, str] | None = None
    completed_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


def unix(moment: datetime | None) -> int | None:
    """Unix seconds; SQLite hands back naive datetimes, which are UTC here."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def state_of(view: JobView, live: Live | None) -> State:
    """Combine the catalogue row and Temporal's answer (``None``: not asked, or no answer)."""
    row = view.row
    if row is not None:
        status = JobStatus(row.status)
        if status.is_terminal:
            error = None
            if not status.is_success:
                error = {
                    "code": _ERROR_CODES.get(status) or row.error_code or "generation_failed",
                    "message": row.error_message or f"the job ended {status.value}",
                }
            progress = 100 if status.is_success else row.progress
            return State(_PROTOCOL[status], progress, error, row.completed_at)
    if live is not None and live.progress is not None:
        # Terminal in the workflow but not yet in the row: still finishing (saving).
        status = live.progress.status
        protocol = "in_progress" if status.is_terminal else _PROTOCOL[status]
        return State(protocol, min(live.progress.progress, 99))
    if live is not None and live.closed is not None:
        code = _CLOSED_CODES.get(live.closed, "workflow_ended")
        message = f"the job's workflow ended ({live.closed.name.lower()}) before recording a result"
        return State("failed", row.progress if row else 0, {"code": code, "message": message})
    if live is not None and live.missing:
        message = "the job was not started; send the request again with the same Idempotency-Key"
        return State("failed", 0, {"code": "not_started", "message": message})
    if row is not None:
        return State(_PROTOCOL[JobStatus(row.status)], min(row.progress, 99))
    return State("queued", 0)


def video_object(view: JobView, state: State, *, video_url: str | None) -> dict[str, Any]:
    """The protocol's video object; ``url``/``video_url`` only once completed."""
    job = view.job
    body: dict[str, Any] = {
        "id": job.id,
        "object": "video",
        "created_at": unix(job.created_at),
        "completed_at": unix(state.completed_at),
        "expires_at": None,
        "model": job.model,
        "progress": state.progress,
        "prompt": job.prompt,
        "remixed_from_video_id": None,
        "seconds": str(job.seconds),
        "size": job.size,
        "status": state.status,
        "error": state.error,
    }
    if state.status == "completed" and video_url:
        body["url"] = video_url
        body["video_url"] = video_url
    return body
