"""Search attributes on the dev server: they follow the job, and an unchanged value is never upserted.

Each upsert is a history event; the Web UI's list filters on them (``SoraStatus = "completed"``).
"""

from __future__ import annotations

import json
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from sora_temporal import search_attributes as sa
from sora_temporal.types import JobStatus, VideoRequest
from starter import start_video
from support import Deployment, job_result

pytestmark = pytest.mark.integration


async def test_every_upsert_changes_a_value_and_the_last_ones_describe_the_stored_job(
    deployment: Deployment, dev_env: WorkflowEnvironment
) -> None:
    handle = await start_video(
        dev_env.client,
        deployment.settings,
        VideoRequest("a heron lifts off [sim:duration=400]", poll_interval_seconds=1),
        f"attributes-{uuid.uuid4().hex[:8]}",
    )
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    known: dict[str, object] = {}
    history = await handle.fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            fields = event.workflow_execution_started_event_attributes.search_attributes.indexed_fields
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        else:
            continue
        values = {name: json.loads(payload.data) for name, payload in fields.items()}
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            if set(values) == {"TemporalChangeVersion"}:
                continue  # the SDK records each patch (workflow.patched) there, once
            assert any(known.get(k) != v for k, v in values.items()), (
                f"event {event.event_id} changes nothing"
            )
        known.update(values)
    described = await handle.describe()
    attributes = {pair.key.name: pair.value for pair in described.typed_search_attributes}
    assert attributes[sa.SORA_STATUS.name] == "completed"
    assert attributes[sa.SORA_PROGRESS.name] == 100
    assert attributes[sa.SORA_VIDEO_ID.name] == result.video_id
