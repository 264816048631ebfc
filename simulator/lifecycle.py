"""A job's lifecycle, planned once at creation and read lazily from the clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from simulator.config import SimConfig
from simulator.hostile import poisoned_error
from simulator.markers import DEFAULT_FAILURE_CODE, PromptMarkers

_FAILURE_MESSAGES = {
    "internal_error": "Video generation failed due to an internal error. Please try again.",
    "moderation_blocked": "Your request was blocked by our moderation system.",
    "content_policy_violation": "The generated video was flagged by our content policy.",
}


class JobStatus(StrEnum):
    """Canonical job statuses (OpenAI wire names)."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Whether the job reached a terminal state."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


def failure_message(code: str) -> str:
    """A plausible human message for a failure code."""
    return _FAILURE_MESSAGES.get(code, f"Video generation failed ({code}).")


def realistic_render_seconds(model: str, clip_seconds: int) -> float:
    """Nominal realistic generation time: sora-2 ~30 s + 6 s per clip-second, pro models twice that."""
    base = 30.0 + 6.0 * clip_seconds
    return base * 2 if "pro" in model.lower() else base


@dataclass
class Plan:
    """When a job starts, ends and how (all absolute simulator times, in seconds).

    Attributes:
        started_at: Leaves the queue.
        ends_at: Reaches its outcome, or None when it never does.
        render_span: Time a full render would take; progress is measured against it.
        outcome: COMPLETED or FAILED.
        error_code: Failure code when the outcome is FAILED.
        error_message: Failure message when the outcome is FAILED.
        lifetime: How long content stays downloadable after completion (0 = expired at once).
        expired_at: Forced expiry time, overriding ``lifetime``.
    """

    started_at: float
    ends_at: float | None
    render_span: float
    outcome: JobStatus
    error_code: str | None = None
    error_message: str | None = None
    lifetime: float = 0.0
    expired_at: float | None = None

    @property
    def expires_at(self) -> float | None:
        """When content stops being downloadable; None unless the job completes."""
        if self.outcome is not JobStatus.COMPLETED or self.ends_at is None:
            return None
        if self.expired_at is not None:
            return min(self.expired_at, self.ends_at + self.lifetime)
        return self.ends_at + self.lifetime


@dataclass(frozen=True)
class Snapshot:
    """A job's observable state at one instant (``observed_at``)."""

    observed_at: float
    status: JobStatus
    progress: int
    completed_at: float | None = None
    expires_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def expired(self) -> bool:
        """Content is gone (only meaningful once completed)."""
        return self.expires_at is not None and self.observed_at >= self.expires_at


def make_plan(
    config: SimConfig,
    *,
    created: float,
    model: str,
    clip_seconds: int,
    markers: PromptMarkers,
    sequence: int,
) -> Plan:
    """Plan a job's life from realistic durations, seeded jitter and prompt markers.

    Args:
        config: Simulator settings (time scale, seed, never-finish, lifetimes).
        created: Creation time.
        model: Model name (pro models are slower).
        clip_seconds: Requested clip duration.
        markers: Steering from the prompt.
        sequence: The job's creation number; with the seed it makes the jitter reproducible.
    """
    rng = random.Random(f"{config.seed}:{sequence}")
    if markers.duration is not None:
        queue = markers.duration * 0.1
        render = markers.duration - queue
    else:
        queue = rng.uniform(2.0, 8.0)
        render = realistic_render_seconds(model, clip_seconds) * rng.uniform(0.85, 1.15)
    started = created + config.scaled(queue)
    render_span = config.scaled(render)
    if markers.never or config.never_finish:
        return Plan(
            started_at=started,
            ends_at=None,
            render_span=render_span,
            outcome=JobStatus.COMPLETED,
            lifetime=0.0 if markers.expire else config.content_lifetime,
        )
    if markers.fail_code is not None or markers.error_kind is not None:
        # Failures surface part-way through rendering, where progress then stops.
        fraction = 1.0 if markers.duration is not None else rng.uniform(0.3, 0.9)
        if markers.error_kind is not None:
            code, message = poisoned_error(markers.error_kind)
        else:
            code = markers.fail_code or DEFAULT_FAILURE_CODE
            message = failure_message(code)
        return Plan(
            started_at=started,
            ends_at=started + render_span * fraction,
            render_span=render_span,
            outcome=JobStatus.FAILED,
            error_code=code,
            error_message=message,
            lifetime=config.content_lifetime,
        )
    return Plan(
        started_at=started,
        ends_at=started + render_span,
        render_span=render_span,
        outcome=JobStatus.COMPLETED,
        lifetime=0.0 if markers.expire else config.content_lifetime,
    )


def observe(plan: Plan, now: float) -> Snapshot:
    """Read the plan at time ``now``.

    Args:
        plan: The job's plan.
        now: Current simulator time.
    """
    if plan.ends_at is not None and now >= plan.ends_at:
        if plan.outcome is JobStatus.COMPLETED:
            return Snapshot(
                now, JobStatus.COMPLETED, 100, completed_at=plan.ends_at, expires_at=plan.expires_at
            )
        return Snapshot(
            now,
            JobStatus.FAILED,
            _progress(plan, plan.ends_at),
            completed_at=plan.ends_at,
            error_code=plan.error_code,
            error_message=plan.error_message,
        )
    if now < plan.started_at:
        return Snapshot(now, JobStatus.QUEUED, 0)
    return Snapshot(now, JobStatus.IN_PROGRESS, _progress(plan, now))


def _progress(plan: Plan, at: float) -> int:
    if plan.render_span <= 0:
        return 99
    fraction = (at - plan.started_at) / plan.render_span
    # 100 is reserved for completion, so a running job never claims it.
    return max(0, min(99, int(fraction * 100)))
