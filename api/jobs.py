"""The Temporal side of the API: start a job's workflow, read its live state, ask it to cancel."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryRejectedError,
)
from temporalio.common import (
    QueryRejectCondition,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from sora_temporal import search_attributes as sa
from sora_temporal.launch import start_job
from sora_temporal.types import JobProgress, VideoRequest, VideoWorkflowInput
from workflows.video import VideoGenerationWorkflow

log = logging.getLogger(__name__)

# A read must answer promptly even while no worker can take the query (one just died, or its
# sticky queue has not timed out yet); the catalogue row then answers alone.
QUERY_TIMEOUT = timedelta(seconds=1)
SIGNAL_TIMEOUT = timedelta(seconds=10)
LIVE_TTL_SECONDS = 0.5
LIVE_STALE_SECONDS = 5.0
MAX_SHARED_QUERIES = 10_000


@dataclass(frozen=True)
class Live:
    """What Temporal says about a job right now.

    Exactly one of the attributes is set: ``progress`` (the workflow runs and answered its query),
    ``closed`` (it ended, with this status) or ``missing`` (no such workflow: it was never started).
    """

    progress: JobProgress | None = None
    closed: WorkflowExecutionStatus | None = None
    missing: bool = False


@dataclass
class _SharedQuery:
    """The latest ``progress`` query of one workflow, shared by its readers, and its last answer."""

    started: float
    query: asyncio.Future[Live | None]
    last: Live | None = None
    last_at: float = 0.0


def budget_account(owner: str) -> str:
    """The budget account of an API key's jobs: ``api-key:`` and the key's owner hash (never the key)."""
    return f"api-key:{owner}"


class Jobs:
    """Starts, reads and cancels ``VideoGenerationWorkflow`` runs for the API.

    Args:
        client: A connected Temporal client.
        task_queue: The workers' shared task queue.
        search_attributes: Whether the namespace has our custom search attributes (checked once at
            start-up, like the starter checks before each start).
    """

    def __init__(self, client: Client, *, task_queue: str, search_attributes: bool) -> None:
        self.client = client
        self.task_queue = task_queue
        self.search_attributes = search_attributes
        self._recent: dict[str, _SharedQuery] = {}

    @classmethod
    async def connect(cls, client: Client, *, task_queue: str) -> Jobs:
        """Check the namespace's search attributes once and build the runner."""
        missing = await sa.missing(client)
        if missing:
            log.warning(sa.how_to_create(missing, client.namespace))
        return cls(client, task_queue=task_queue, search_attributes=not missing)

    async def start(
        self,
        workflow_id: str,
        request: VideoRequest,
        *,
        label: str,
        budget_account: str | None = None,
        notify_as: str | None = None,
    ) -> None:
        """Start the job's workflow; starting one that already exists (a replay) does nothing.

        A workflow id is never reused (:func:`~sora_temporal.launch.start_job`), so however often a
        replay calls this, at most one workflow, and so at most one paid job, exists per id.

        Args:
            workflow_id: The job's workflow id.
            request: What to generate.
            label: How the request's reference image is described in the Web UI (never a URL, which
                may carry credentials).
            budget_account: Whose daily budget the job also counts against (:func:`budget_account`).
            notify_as: The job's public id, when the application is to get a webhook as it ends.
        """
        try:
            await start_job(
                self.client,
                VideoWorkflowInput(request=request, budget_account=budget_account, notify_as=notify_as),
                workflow_id=workflow_id,
                task_queue=self.task_queue,
                search_attributes=self.search_attributes,
                reference_label=label,
                origin="Started through the Videos API.",
            )
        except WorkflowAlreadyStartedError:
            log.info("workflow %s already started; replay of the same request", workflow_id)

    async def live(self, workflow_id: str) -> Live | None:
        """The workflow's ``progress`` query, or how it ended; ``None`` when Temporal cannot say now.

        Every query is a workflow task on a worker. Readers of one job share one query per
        ``LIVE_TTL_SECONDS``, so many clients polling the same job cost the workers one query per
        interval, not one per request. While the next query runs, readers get the last answer (if
        it is under ``LIVE_STALE_SECONDS`` old), so a slow or busy worker does not delay reads. The
        catalogue row, read fresh every time, stays the only source of ``completed``.
        """
        now = time.monotonic()
        shared = self._recent.get(workflow_id)
        if shared is None:
            self._forget_old(now)
            shared = _SharedQuery(now, asyncio.ensure_future(self._query(workflow_id)))
            self._recent[workflow_id] = shared
        elif shared.query.done():
            answer = shared.query.result()
            if answer is not None:
                shared.last, shared.last_at = answer, shared.started
            if now >= shared.started + LIVE_TTL_SECONDS:
                shared.started, shared.query = now, asyncio.ensure_future(self._query(workflow_id))
        if shared.last is not None and now < shared.last_at + LIVE_STALE_SECONDS:
            return shared.last
        # Shielded: one reader going away must not cancel the query the others wait for.
        return await asyncio.shield(shared.query)

    def _forget_old(self, now: float) -> None:
        if len(self._recent) < MAX_SHARED_QUERIES:
            return
        self._recent = {
            k: v
            for k, v in self._recent.items()
            if not v.query.done() or now < v.started + LIVE_STALE_SECONDS
        }
        if len(self._recent) >= MAX_SHARED_QUERIES:
            self._recent.clear()

    async def _query(self, workflow_id: str) -> Live | None:
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            progress: JobProgress = await handle.query(
                VideoGenerationWorkflow.progress,
                reject_condition=QueryRejectCondition.NOT_OPEN,
                rpc_timeout=QUERY_TIMEOUT,
            )
        except WorkflowQueryRejectedError as err:
            return Live(closed=err.status or WorkflowExecutionStatus.COMPLETED)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return Live(missing=True)
            log.debug("progress query of %s failed: %s", workflow_id, err.status)
            return None
        except Exception as err:  # a worker-side query failure; the catalogue row still answers
            log.debug("progress query of %s failed: %s", workflow_id, type(err).__name__)
            return None
        return Live(progress=progress)

    async def exists(self, workflow_id: str) -> bool | None:
        """Whether the workflow exists; ``None`` when Temporal cannot say (after a failed start)."""
        try:
            await self.client.get_workflow_handle(workflow_id).describe(rpc_timeout=SIGNAL_TIMEOUT)
        except RPCError as err:
            return False if err.status is RPCStatusCode.NOT_FOUND else None
        except Exception:
            return None
        return True

    async def cancel(self, workflow_id: str, reason: str) -> bool:
        """Cancel the workflow through Temporal, with ``reason``; ``False`` if it is not running.

        The workflow records ``cancelled`` (or, for a timed-out job still watched for a late video,
        stops watching) and ends cancelled, so Temporal's own status matches the job's.

        Raises:
            RPCError: Temporal did not answer (the caller reports 503).
        """
        try:
            await self.client.get_workflow_handle(workflow_id).cancel(
                reason=reason, rpc_timeout=SIGNAL_TIMEOUT
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        self._recent.pop(workflow_id, None)
        return True
