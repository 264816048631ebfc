"""A new run decides every patch in its first workflow task, so its history replays however it was split.

Decided lazily, a patch asked right after a local activity could be recorded in the next workflow
task (a query arriving while the activity ran splits the task), and on replay the activity resolves
in the earlier task, before the patch is known: a nondeterminism error, a stuck workflow.
"""

from __future__ import annotations

import json

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from sora_temporal.types import JobStatus
from support import Start, job_result
from workflows.video import PATCHES, PATCHES_AT_START

# Events a patch decision itself writes: its marker, and the SDK's upsert of TemporalChangeVersion.
_PATCH_EVENTS = (EventType.EVENT_TYPE_MARKER_RECORDED, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)


def _patch_id(event: HistoryEvent) -> str | None:
    attributes = event.marker_recorded_event_attributes
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED or attributes.marker_name != "core_patch":
        return None
    patch: dict[str, object] = json.loads(attributes.details["patch-data"].payloads[0].data)
    return str(patch["id"])


async def test_every_patch_is_recorded_before_the_first_command(start: Start) -> None:
    handle = await start("a patched kite [sim:duration=20]")
    assert (await job_result(handle)).status is JobStatus.COMPLETED
    events = list((await handle.fetch_history()).events)

    first_task_done = next(
        i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    decisions: list[str] = []
    for event in events[first_task_done + 1 :]:
        patch = _patch_id(event)
        if patch is not None:
            decisions.append(patch)
        elif event.event_type not in _PATCH_EVENTS:
            break
    assert decisions == [PATCHES_AT_START, *PATCHES]
    assert [p for p in map(_patch_id, events) if p is not None] == decisions
