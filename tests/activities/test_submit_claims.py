"""Submit never adopts a job it cannot prove is its own, and claims what it creates before returning.

``submit_video`` runs in an ``ActivityEnvironment`` (as a retry attempt where that matters) against
the Sora simulator and a SQLite catalogue.
"""

from __future__ import annotations

import dataclasses

from temporalio.testing import ActivityEnvironment

from sora_temporal.types import JobStatus, SaveInput, SubmitInput, VideoRequest
from support import Stack


def _retry_attempt() -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2)
    return env


async def test_a_list_without_prompts_never_makes_another_applications_job_ours(stack: Stack) -> None:
    # Another application's job with the same model, size and length, on a gateway whose list
    # entries leave out the prompt: nothing proves it is ours.
    theirs = await stack.activities.sora.create(
        prompt="someone else's lighthouse", model="sora-2", size="1280x720", seconds=4
    )
    stack.sim.add_fault("list", "omit_fields", fields=["prompt"])
    request = VideoRequest(prompt="my own lighthouse")
    stack.catalog.save(SaveInput("wf-mine", JobStatus.SUBMITTING, request=request))

    out = await _retry_attempt().run(stack.activities.submit, SubmitInput("wf-mine", request))

    assert out.video_id != theirs.id
    assert stack.sim.creates("my own lighthouse") == 1
    assert stack.catalog.claimed_video("wf-mine") == out.video_id


async def test_a_created_job_is_claimed_before_submit_returns(stack: Stack) -> None:
    request = VideoRequest(prompt="a claimed sunrise")
    stack.catalog.save(SaveInput("wf-claim", JobStatus.SUBMITTING, request=request))

    out = await ActivityEnvironment().run(stack.activities.submit, SubmitInput("wf-claim", request))

    row = stack.catalog.get("wf-claim")
    assert row is not None and row.video_id == out.video_id


async def test_a_retry_after_a_claim_uses_the_claimed_job_without_a_second_create(stack: Stack) -> None:
    request = VideoRequest(prompt="a kettle, once")
    stack.catalog.save(SaveInput("wf-once", JobStatus.SUBMITTING, request=request))
    first = await ActivityEnvironment().run(stack.activities.submit, SubmitInput("wf-once", request))

    # The first attempt's worker died after the claim, before its result reached Temporal.
    again = await _retry_attempt().run(stack.activities.submit, SubmitInput("wf-once", request))

    assert again.video_id == first.video_id
    assert stack.sim.creates("a kettle, once") == 1


async def test_a_job_claimed_by_another_workflow_is_not_adopted(stack: Stack) -> None:
    request = VideoRequest(prompt="two identical requests")
    stack.catalog.save(SaveInput("wf-a", JobStatus.SUBMITTING, request=request))
    stack.catalog.save(SaveInput("wf-b", JobStatus.SUBMITTING, request=request))
    a = await ActivityEnvironment().run(stack.activities.submit, SubmitInput("wf-a", request))

    b = await _retry_attempt().run(stack.activities.submit, SubmitInput("wf-b", request))

    assert b.video_id != a.video_id
    assert stack.catalog.claimed_video("wf-a") == a.video_id
    assert stack.catalog.claimed_video("wf-b") == b.video_id
