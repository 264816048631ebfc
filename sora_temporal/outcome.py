"""A job's outcome as a caller of the workflow sees it.

The workflow ends as its job did: ``completed`` and ``completed_late`` complete it with a
:class:`~sora_temporal.types.VideoResult`; ``failed``, ``timed_out`` and ``rejected_budget`` fail it
with an ``ApplicationError`` whose type is the error code and whose first detail is the same
``VideoResult``; ``cancelled`` cancels it (Temporal carries no result then: the row says the rest).
"""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowFailureError
from temporalio.converter import value_to_type
from temporalio.exceptions import ApplicationError, CancelledError

from sora_temporal.types import VideoResult


def result_in_failure(err: BaseException) -> VideoResult | None:
    """The :class:`VideoResult` a failed workflow carries in its failure, if it is one of ours."""
    cause = err.cause if isinstance(err, WorkflowFailureError) else err
    # A workflow stopped by the ``cancel`` signal alone fails with a cancellation that carries it too.
    if not isinstance(cause, ApplicationError | CancelledError) or not cause.details:
        return None
    detail: Any = cause.details[0]
    if not isinstance(detail, dict) or "workflow_id" not in detail or "status" not in detail:
        return None
    try:
        result: VideoResult = value_to_type(VideoResult, detail)
    except (TypeError, ValueError):
        return None
    return result


def was_cancelled(err: BaseException) -> bool:
    """Whether the workflow ended cancelled (or stopped by the ``cancel`` signal alone)."""
    cause = err.cause if isinstance(err, WorkflowFailureError) else err
    return isinstance(cause, CancelledError)
