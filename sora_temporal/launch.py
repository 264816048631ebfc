"""Starting a job's workflow: the one way the starter and the ``api`` process both do it."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from sora_temporal import search_attributes as sa
from sora_temporal.types import JobStatus, VideoResult, VideoWorkflowInput
from workflows.video import VideoGenerationWorkflow

SUMMARY_PROMPT_CHARS = 120


async def start_job(
    client: Client,
    input: VideoWorkflowInput,
    *,
    workflow_id: str,
    task_queue: str,
    search_attributes: bool,
    reference_label: str,
    origin: str = "",
) -> WorkflowHandle[Any, VideoResult]:
    """Start ``VideoGenerationWorkflow`` for ``input`` under ``workflow_id``.

    A workflow id is never reused (``REJECT_DUPLICATE``) nor attached to (``FAIL``), so at most one
    workflow, and so at most one paid job, ever exists per id.

    Args:
        client: A connected Temporal client.
        input: The workflow's input.
        workflow_id: The job's workflow id.
        task_queue: The workers' shared task queue.
        search_attributes: Whether the namespace has our custom search attributes; they are set at
            start when it does (the workflow keeps them current).
        reference_label: How the reference image is described in the Web UI (never a URL, which may
            carry credentials).
        origin: A sentence for the Web UI's details saying where the job came from (may be empty).

    Raises:
        WorkflowAlreadyStartedError: A workflow with this id exists or existed.
    """
    request = input.request
    attributes = None
    if search_attributes:
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(sa.SORA_STATUS, JobStatus.SUBMITTING.value),
                SearchAttributePair(sa.SORA_MODEL, request.model),
                SearchAttributePair(sa.SORA_PROGRESS, 0),
            ]
        )
    summary = request.prompt
    if len(summary) > SUMMARY_PROMPT_CHARS:
        summary = summary[: SUMMARY_PROMPT_CHARS - 3] + "..."
    return await client.start_workflow(
        VideoGenerationWorkflow.run,
        input,
        id=workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=attributes,
        static_summary=f"{request.model} {request.size} {request.seconds}s: {summary}",
        static_details=(
            f"**Prompt:** {request.prompt}\n\n**Model:** {request.model} · **Size:** {request.size} · "
            f"**Seconds:** {request.seconds}\n\n**Reference image:** {reference_label}\n\n"
            f"{origin + ' ' if origin else ''}Polls every {request.poll_interval_seconds:g} s, "
            f"gives up after {request.deadline_seconds:g} s."
        ),
    )
