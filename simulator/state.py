"""Jobs and the in-memory store that holds them."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator import errors
from simulator.config import SimConfig
from simulator.hostile import hostile_id
from simulator.lifecycle import JobStatus, Plan, Snapshot, failure_message, make_plan, observe
from simulator.markers import PromptMarkers, parse_markers
from simulator.validation import CreateSpec

MAX_PAGE = 100
DEFAULT_PAGE = 20


@dataclass
class Job:
    """One video generation job.

    Attributes:
        id: ``video_`` followed by hex, or a hostile id asked for by ``[sim:id=...]``.
        sequence: Creation order, used for stable sorting and seeded jitter.
        spec: The validated request.
        created: Creation time (simulator clock).
        plan: When and how the job ends.
        idempotency_key: The ``Idempotency-Key`` header sent with the create, if any.
        remixed_from: Source video id of a remix.
        deleted: Deleted through the API (kept so list cursors keep working).
        response_lost: The create succeeded but its response was withheld by a fault.
        markers: The ``[sim:...]`` markers of its prompt.
    """

    id: str
    sequence: int
    spec: CreateSpec
    created: float
    plan: Plan
    idempotency_key: str | None = None
    remixed_from: str | None = None
    deleted: bool = False
    response_lost: bool = False
    markers: PromptMarkers = field(default_factory=PromptMarkers)

    def observe(self, now: float) -> Snapshot:
        """The job's state at ``now``."""
        return observe(self.plan, now)


@dataclass
class JobStore:
    """All jobs of one simulator process, in creation order."""

    config: SimConfig
    clock: Callable[[], float]
    _jobs: dict[str, Job] = field(default_factory=dict)
    _by_idempotency_key: dict[str, str] = field(default_factory=dict)
    _sequence: int = 0

    def create(
        self, spec: CreateSpec, *, idempotency_key: str | None, remixed_from: str | None = None
    ) -> Job:
        """Create and plan a job.

        A fixed hostile id (``.``, ``..``, ``raw:...``) that is already taken passes to the new job.
        """
        self._sequence += 1
        now = self.clock()
        markers = parse_markers(spec.prompt)
        plan = make_plan(
            self.config,
            created=now,
            model=spec.model,
            clip_seconds=spec.seconds,
            markers=markers,
            sequence=self._sequence,
        )
        job = Job(
            id=hostile_id(markers.id_kind) if markers.id_kind else f"video_{secrets.token_hex(24)}",
            sequence=self._sequence,
            spec=spec,
            created=now,
            plan=plan,
            idempotency_key=idempotency_key,
            remixed_from=remixed_from,
            markers=markers,
        )
        self._jobs.pop(job.id, None)
        self._jobs[job.id] = job
        if idempotency_key is not None:
            self._by_idempotency_key.setdefault(idempotency_key, job.id)
        return job

    def by_idempotency_key(self, key: str) -> Job | None:
        """The first job created with this key, if it still exists."""
        job_id = self._by_idempotency_key.get(key)
        job = self._jobs.get(job_id) if job_id else None
        return job if job is not None and not job.deleted else None

    def get(self, video_id: str) -> Job:
        """A live (not deleted) job.

        Raises:
            ApiError: 404 when unknown or deleted.
        """
        job = self._jobs.get(video_id)
        if job is None or job.deleted:
            raise errors.not_found(f"Video with id '{video_id}' not found.")
        return job

    def find(self, video_id: str) -> Job | None:
        """Any job by id, deleted or not (for control endpoints)."""
        return self._jobs.get(video_id)

    def all(self) -> list[Job]:
        """Every job ever created (including deleted ones), oldest first."""
        return list(self._jobs.values())

    def page(self, *, after: str | None, limit: int, descending: bool) -> tuple[list[Job], bool]:
        """One page of live jobs after the cursor.

        Args:
            after: Id of the last job of the previous page.
            limit: Page size.
            descending: Newest first.

        Returns:
            The page and whether more jobs follow.

        Raises:
            ApiError: 400 when the cursor is unknown.
        """
        ordered = sorted(self._jobs.values(), key=lambda job: job.sequence, reverse=descending)
        if after is not None:
            positions = {job.id: index for index, job in enumerate(ordered)}
            if after not in positions:
                raise errors.invalid(f"Invalid 'after': no video with id '{after}'.", param="after")
            ordered = ordered[positions[after] + 1 :]
        live = [job for job in ordered if not job.deleted]
        return live[:limit], len(live) > limit

    def delete(self, video_id: str) -> Job:
        """Delete a finished job.

        Raises:
            ApiError: 404 when unknown, 400 while it is still queued or running.
        """
        job = self.get(video_id)
        status = job.observe(self.clock()).status
        if not status.finished:
            raise errors.invalid(
                f"Video '{video_id}' is still {status.value}; only completed or failed videos can be deleted.",
                param="video_id",
                code="invalid_request",
            )
        job.deleted = True
        return job

    def force(
        self,
        video_id: str,
        *,
        status: JobStatus | None,
        error_code: str | None = None,
        error_message: str | None = None,
        expire: bool = False,
        settle: float = 0.0,
    ) -> Job:
        """Force a job into a final state now (or ``settle`` seconds from now), optionally expiring it.

        ``settle`` is how a webhook ``early`` rule makes the event precede the status.

        Raises:
            ApiError: 404 when unknown, 400 on a status that is not final.
        """
        job = self.find(video_id)
        if job is None:
            raise errors.not_found(f"Video with id '{video_id}' not found.")
        now = self.clock()
        plan = job.plan
        if status is None and expire:
            # Expiring only makes sense for a completed job; finish it first if needed.
            status = plan.outcome if job.observe(now).status.finished else JobStatus.COMPLETED
        if status is not None:
            if not status.finished:
                raise errors.invalid("Forced status must be 'completed' or 'failed'.", param="status")
            ends = now + settle
            if plan.ends_at is None or plan.ends_at > ends:
                plan.ends_at = ends
            # A forced job is rendering at the latest now, also while an ``early`` settle runs.
            plan.started_at = min(plan.started_at, plan.ends_at, now)
            plan.outcome = status
            if status is JobStatus.FAILED:
                # A planned failure keeps its own message (it may be poisoned on purpose).
                keep = error_code is None and plan.error_code is not None and plan.error_message is not None
                plan.error_code = error_code or plan.error_code or "internal_error"
                if error_message is not None or not keep:
                    plan.error_message = error_message or failure_message(plan.error_code)
            else:
                plan.error_code = plan.error_message = None
        if expire:
            plan.expired_at = now
        return job

    def reset(self) -> None:
        """Forget every job."""
        self._jobs.clear()
        self._by_idempotency_key.clear()
        self._sequence = 0

    def describe(self, job: Job, wire_status: str) -> dict[str, Any]:
        """The control-plane view of a job used by ``/_sim/stats``."""
        reference = job.spec.reference
        return {
            "id": job.id,
            "prompt": job.spec.prompt,
            "model": job.spec.model,
            "size": job.spec.size,
            "seconds": str(job.spec.seconds),
            "status": wire_status,
            "idempotency_key": job.idempotency_key,
            "created_at": int(job.created),
            "deleted": job.deleted,
            "response_lost": job.response_lost,
            "remixed_from_video_id": job.remixed_from,
            "has_input_reference": reference is not None,
            "input_reference_size": list(reference.size) if reference and reference.size else None,
        }
