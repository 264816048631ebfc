"""Webhooks end to end: the simulator signs and delivers events to the ``api`` process, which wakes
the workflows a worker process runs on the dev server.

Every delivery fault the simulator plays gets its own job (the rule matches its prompt only), all
started at once. Jobs finish 2 s after they are created; with webhooks configured they are checked
every ``FALLBACK`` seconds without an event, so an event that never arrives costs one late check.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_process import ApiProcess
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from webhook_support import Trace, event, new_secret, receiver_env, signed_headers, trace

from simulator.testing import RunningSimulator, start_simulator
from sora_temporal.settings import Settings, WebhookSettings
from sora_temporal.types import JobStatus, VideoRequest, VideoResult
from starter import start_video
from support import Deployment, job_result

pytestmark = pytest.mark.integration

FALLBACK = 6.0
JOB = "[sim:duration=200]"  # 2 s at the simulator's time scale


@dataclass(frozen=True)
class Case:
    name: str
    rule: dict[str, Any] | None
    signalled: bool

    @property
    def prompt(self) -> str:
        return f"<webhook {self.name}> a lantern in the fog {JOB}"


CASES = [
    Case("delivered", None, True),
    Case("delayed", {"action": "delay", "delay": 1.0}, True),
    Case("duplicated", {"action": "duplicate", "times": 3, "spacing": 0.2}, True),
    Case("early", {"action": "early", "lead": 1.0}, True),
    Case("dropped", {"action": "drop"}, False),
    Case("forged", {"action": "bad_signature"}, False),
    Case("expired", {"action": "expired"}, False),
]


@dataclass
class Stack:
    client: Client
    sim: RunningSimulator
    deployment: Deployment
    receiver: ApiProcess
    secret: str
    settings: Settings

    async def start(self, prompt: str) -> WorkflowHandle[Any, VideoResult]:
        return await start_video(
            self.client,
            self.settings,
            VideoRequest(prompt, poll_interval_seconds=1),
            f"wh-{uuid.uuid4().hex[:10]}",
        )


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webhooks")


@pytest.fixture(scope="module")
def stack(dev_env: WorkflowEnvironment, module_dir: Path) -> Iterator[Stack]:
    secret = new_secret()
    with start_simulator(time_scale=0.01) as sim:
        target = dev_env.client.service_client.config.target_host
        deployment = Deployment.configure(target, sim, module_dir, f"sqlite:///{module_dir / 'sora.db'}")
        deployment.start_worker()
        receiver = ApiProcess(receiver_env(deployment.env, secret), module_dir / "api.log").start()
        try:
            sim.configure_webhooks(url=receiver.webhook_url, secret=secret, attempts=5)
            # What the starter reads from OPENAI_WEBHOOK_SECRET and WEBHOOK_FALLBACK_POLL_SECONDS.
            settings = replace(
                deployment.settings, webhooks=WebhookSettings(secret=secret, fallback_poll_seconds=FALLBACK)
            )
            yield Stack(dev_env.client, sim, deployment, receiver, secret, settings)
        finally:
            receiver.stop()
            deployment.stop_workers()


@dataclass(frozen=True)
class Outcome:
    result: VideoResult
    trace: Trace
    event: dict[str, Any]


@pytest.fixture(scope="module")
async def outcomes(stack: Stack) -> dict[str, Outcome]:
    for case in CASES:
        if case.rule is not None:
            stack.sim.add_fault(
                "webhook",
                case.rule["action"],
                match_prompt=f"<webhook {case.name}>",
                **{k: v for k, v in case.rule.items() if k != "action"},
            )
    handles = {case.name: await stack.start(case.prompt) for case in CASES}
    finished = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles.values())), timeout=90)
    done = dict(zip(handles, finished, strict=True))
    # Late copies of a duplicated event must find nothing left to do; let them all arrive.
    await asyncio.sleep(1.5)
    events = {e["video_id"]: e for e in stack.sim.webhook_events()}
    return {
        name: Outcome(done[name], await trace(handle), events.get(done[name].video_id or "", {}))
        for name, handle in handles.items()
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_job_is_stored_whatever_became_of_its_webhook(outcomes: dict[str, Outcome], case: Case) -> None:
    outcome = outcomes[case.name]

    assert outcome.result.status is JobStatus.COMPLETED, outcome.result
    assert outcome.event, "the simulator made no event for the job"


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.signalled], ids=[c.name for c in CASES if c.signalled]
)
def test_a_delivered_event_wakes_the_workflow_once(outcomes: dict[str, Outcome], case: Case) -> None:
    outcome = outcomes[case.name]

    assert outcome.trace.signals == 1
    assert outcome.trace.first_check is not None and outcome.trace.first_signal is not None
    # Nothing was checked before the event: the fallback had not come round yet.
    assert outcome.trace.first_signal < outcome.trace.first_check


def test_a_job_whose_event_came_on_time_is_checked_once(outcomes: dict[str, Outcome]) -> None:
    for name in ("delivered", "delayed", "duplicated"):
        assert outcomes[name].trace.checks == 1, name


def test_a_duplicated_event_is_delivered_three_times_and_acts_once(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["duplicated"]

    assert outcome.event["deliveries"] == 3
    assert outcome.trace.signals == 1 and outcome.trace.checks == 1


def test_an_event_ahead_of_the_status_is_followed_by_polling_until_it_shows(
    outcomes: dict[str, Outcome],
) -> None:
    outcome = outcomes["early"]

    assert outcome.trace.checks >= 2  # the first check still saw the job rendering


@pytest.mark.parametrize("name", ["dropped", "forged", "expired"])
def test_without_a_usable_event_the_fallback_check_stores_the_video(
    outcomes: dict[str, Outcome], name: str
) -> None:
    outcome = outcomes[name]

    assert outcome.trace.signals == 0
    assert outcome.trace.checks >= 1


@pytest.mark.parametrize("name", ["forged", "expired"])
def test_a_forged_or_expired_event_is_refused_at_every_attempt(
    outcomes: dict[str, Outcome], name: str
) -> None:
    outcome = outcomes[name]

    assert outcome.event["deliveries"] == 0
    assert outcome.event["responses"] and set(outcome.event["responses"]) == {400}


def test_refusals_are_logged_without_the_body(stack: Stack, outcomes: dict[str, Outcome]) -> None:
    log = stack.receiver.log()

    assert "refused (400)" in log
    forged = outcomes["forged"].event
    assert forged["id"] not in log  # the event id lives in the body, which is never logged


# --- requests made by hand -----------------------------------------------------------------------


async def _video_id(stack: Stack, handle: WorkflowHandle[Any, VideoResult]) -> str:
    """The Sora job id, once the workflow's row holds it."""
    catalog = stack.deployment.catalog()
    try:
        for _ in range(400):
            row = catalog.get(handle.id)
            if row is not None and row.video_id:
                return row.video_id
            await asyncio.sleep(0.05)
    finally:
        catalog.engine.dispose()
    raise AssertionError("the job was never submitted")


async def _running_job(stack: Stack) -> tuple[WorkflowHandle[Any, VideoResult], str]:
    handle = await stack.start("<webhook by hand> a tide that never turns [sim:never]")
    return handle, await _video_id(stack, handle)


async def test_forged_missing_and_stale_signatures_are_refused_and_signal_nothing(stack: Stack) -> None:
    handle, video_id = await _running_job(stack)
    body = event(video_id)
    attempts = {
        "no headers": {"content-type": "application/json"},
        "wrong secret": signed_headers(new_secret(), body),
        "stale": signed_headers(stack.secret, body, age=400),
        "from the future": signed_headers(stack.secret, body, age=-400),
        "garbled signature": {**signed_headers(stack.secret, body), "webhook-signature": "v1,not base64!"},
        "no version": {**signed_headers(stack.secret, body), "webhook-signature": "abc"},
    }
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for name, headers in attempts.items():
                answer = await http.post(stack.receiver.webhook_url, content=body, headers=headers)
                assert answer.status_code == 400, (name, answer.text)
            tampered = body.replace(b"video.completed", b"video.failed")
            answer = await http.post(
                stack.receiver.webhook_url, content=tampered, headers=signed_headers(stack.secret, body)
            )
            assert answer.status_code == 400
            assert (await trace(handle)).signals == 0
            # The same event, signed properly, is taken.
            answer = await http.post(
                stack.receiver.webhook_url, content=body, headers=signed_headers(stack.secret, body)
            )
            assert answer.status_code == 200, answer.text
            assert (await trace(handle)).signals == 1
    finally:
        await handle.cancel()


async def test_an_event_about_an_unknown_video_is_acknowledged(stack: Stack) -> None:
    body = event("video_nobody_knows_" + uuid.uuid4().hex)

    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            stack.receiver.webhook_url, content=body, headers=signed_headers(stack.secret, body)
        )

    assert answer.status_code == 200
    assert answer.json()["result"] == "acknowledged: unknown video"


async def test_an_oversized_body_is_refused_before_it_is_read_in_full(stack: Stack) -> None:
    body = b"{" + b" " * (100 * 1024) + b"}"

    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            stack.receiver.webhook_url, content=body, headers=signed_headers(stack.secret, body)
        )

    assert answer.status_code == 413


async def test_a_job_completes_while_the_receiver_is_down_when_its_event_is_sent(stack: Stack) -> None:
    stack.receiver.stop()
    try:
        handle = await stack.start("<webhook receiver down> a lighthouse keeper's night " + JOB)
        video_id = await _video_id(stack, handle)
        for _ in range(400):  # until the simulator tried to deliver, and found nobody there
            if any(e["video_id"] == video_id and e["attempts"] for e in stack.sim.webhook_events()):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the simulator never tried to deliver the event")
    finally:
        stack.receiver.start()
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    (sent,) = [e for e in stack.sim.webhook_events() if e["video_id"] == video_id]
    assert isinstance(sent["responses"][0], str)  # a connection error, not an HTTP answer
