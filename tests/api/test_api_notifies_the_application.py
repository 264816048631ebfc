"""With ``OUTBOUND_WEBHOOK_URL`` set, the application hears when a job ends: signed, retried, durable.

The events are the Videos API's own (``video.completed`` / ``video.failed``, thin payloads), signed
per Standard Webhooks with ``OUTBOUND_WEBHOOK_SECRET``, so the official SDK's verifier accepts them.
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from api_support import API_KEY_A, ApiStack, running_stack, workflow_id_of
from standardwebhooks.webhooks import Webhook
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from webhook_receiver import Delivery, WebhookReceiver, running_receiver

from simulator.testing import RunningSimulator

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
SLOW = "[sim:duration=400]"
# Endpoints often carry a token in their URL: it is as secret as the signing secret.
URL_TOKEN = secrets.token_hex(16)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """The application's webhook endpoint, on loopback."""
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    dev_env: WorkflowEnvironment, api_sim: RunningSimulator, api_dir: Path, receiver: WebhookReceiver
) -> Iterator[ApiStack]:
    """A worker and an ``api`` process that both have the application's webhook URL and secret."""
    with running_stack(
        dev_env.client.service_client.config.target_host,
        api_sim,
        api_dir,
        OUTBOUND_WEBHOOK_URL=f"{receiver.url}?token={URL_TOKEN}",
        OUTBOUND_WEBHOOK_SECRET=SECRET,
        LOG_LEVEL="DEBUG",
    ) as running:
        yield running


def _deliveries_for(
    receiver: WebhookReceiver, video_id: str, count: int, timeout: float = 30
) -> list[Delivery]:
    deadline = time.monotonic() + timeout
    while True:
        mine = [d for d in receiver.deliveries() if d.event["data"]["id"] == video_id]
        if len(mine) >= count:
            return mine
        assert time.monotonic() < deadline, f"expected {count} deliveries for {video_id}, got {len(mine)}"
        time.sleep(0.05)


async def _delivery_ended(dev_env: WorkflowEnvironment, video_id: str) -> WorkflowExecutionStatus | None:
    handle = dev_env.client.get_workflow_handle(workflow_id_of(video_id) + "-webhook")
    await handle.result()
    return (await handle.describe()).status


def _verified(delivery: Delivery) -> dict[str, object]:
    """The event, after both the official SDK's and the ``standardwebhooks`` verifier accepted it."""
    openai.OpenAI(api_key="unused").webhooks.verify_signature(delivery.body, delivery.headers, secret=SECRET)
    verified: dict[str, object] = Webhook(SECRET).verify(delivery.body, delivery.headers)
    return verified


async def test_a_completed_job_is_announced_once_signed_with_the_shared_secret(
    stack: ApiStack, receiver: WebhookReceiver, dev_env: WorkflowEnvironment
) -> None:
    video = stack.client().videos.create_and_poll(prompt="a heron at dawn")

    (delivery,) = _deliveries_for(receiver, video.id, 1)
    event = _verified(delivery)
    assert event["type"] == "video.completed" and event["object"] == "event"
    assert event["data"] == {"id": video.id}
    assert str(event["id"]).startswith("evt_") and delivery.headers["webhook-id"] == event["id"]
    assert await _delivery_ended(dev_env, video.id) is WorkflowExecutionStatus.COMPLETED
    assert len(_deliveries_for(receiver, video.id, 1)) == 1


async def test_the_announced_video_is_already_completed_when_the_application_fetches_it(
    stack: ApiStack, receiver: WebhookReceiver
) -> None:
    client = stack.client()
    created = client.videos.create(prompt="a lantern on a lake")

    _deliveries_for(receiver, created.id, 1)
    video = client.videos.retrieve(created.id)

    assert video.status == "completed"
    assert client.videos.download_content(video.id).read() == stack.stored_bytes(workflow_id_of(video.id))


def test_a_failed_job_is_announced_as_video_failed(stack: ApiStack, receiver: WebhookReceiver) -> None:
    video = stack.client().videos.create_and_poll(prompt="a glass bridge [sim:fail:moderation_blocked]")

    (delivery,) = _deliveries_for(receiver, video.id, 1)
    assert video.status == "failed"
    assert _verified(delivery)["type"] == "video.failed"


def test_a_job_deleted_while_running_is_announced_as_video_failed(
    stack: ApiStack, receiver: WebhookReceiver
) -> None:
    client = stack.client()
    created = client.videos.create(prompt=f"a clock tower, cancelled {SLOW}")
    with stack.http() as http:
        deadline = time.monotonic() + 60
        while http.get(f"/v1/videos/{created.id}").json()["status"] != "in_progress":
            assert time.monotonic() < deadline, "the job never started running"
            time.sleep(0.1)

    client.videos.delete(created.id)

    (delivery,) = _deliveries_for(receiver, created.id, 1)
    assert _verified(delivery)["type"] == "video.failed"


def test_a_refusing_endpoint_gets_the_same_event_until_it_accepts(
    stack: ApiStack, receiver: WebhookReceiver
) -> None:
    receiver.answer(503, 500, retry_after=1)

    video = stack.client().videos.create_and_poll(prompt="a tram in the snow")

    deliveries = _deliveries_for(receiver, video.id, 3)
    assert [d.status for d in deliveries] == [503, 500, 200]
    assert len({d.headers["webhook-id"] for d in deliveries}) == 1
    assert len({d.body for d in deliveries}) == 1
    assert all(_verified(d)["type"] == "video.completed" for d in deliveries)


def test_delivery_outlives_the_worker_that_was_sending_it(stack: ApiStack, receiver: WebhookReceiver) -> None:
    receiver.answer(503, retry_after=3)
    video = stack.client().videos.create_and_poll(prompt="a ferry at night")
    (refused,) = _deliveries_for(receiver, video.id, 1)

    for worker in stack.deployment.workers:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    stack.deployment.start_worker()

    refused, accepted = _deliveries_for(receiver, video.id, 2, timeout=60)
    assert (refused.status, accepted.status) == (503, 200)
    assert refused.headers["webhook-id"] == accepted.headers["webhook-id"]
    assert json.loads(accepted.body)["data"] == {"id": video.id}


def test_the_payload_carries_no_secret_and_nothing_but_the_id(
    stack: ApiStack, receiver: WebhookReceiver
) -> None:
    video = stack.client().videos.create_and_poll(prompt="a field of sunflowers")

    (delivery,) = _deliveries_for(receiver, video.id, 1)
    event = json.loads(delivery.body)
    assert set(event) == {"id", "object", "created_at", "type", "data"}
    assert SECRET not in delivery.body.decode() and API_KEY_A not in delivery.body.decode()
    assert SECRET not in json.dumps(delivery.headers)


async def test_an_endpoint_that_answers_410_gone_is_not_asked_again(
    stack: ApiStack, receiver: WebhookReceiver, dev_env: WorkflowEnvironment
) -> None:
    receiver.answer(410)
    video = stack.client().videos.create_and_poll(prompt="a lighthouse keeper's day off")

    handle = dev_env.client.get_workflow_handle(workflow_id_of(video.id) + "-webhook")
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    assert [d.status for d in _deliveries_for(receiver, video.id, 1)] == [410]
    assert video.status == "completed"


async def test_the_url_and_secret_stay_out_of_histories_and_logs(
    stack: ApiStack, receiver: WebhookReceiver, dev_env: WorkflowEnvironment
) -> None:
    video = stack.client().videos.create_and_poll(prompt="a windmill in fog")
    _deliveries_for(receiver, video.id, 1)
    await _delivery_ended(dev_env, video.id)

    key = SECRET.removeprefix("whsec_")
    for workflow_id in (workflow_id_of(video.id), workflow_id_of(video.id) + "-webhook"):
        history = (await dev_env.client.get_workflow_handle(workflow_id).fetch_history()).to_json()
        assert URL_TOKEN not in history and key not in history, workflow_id
    worker_log = (stack.deployment.tmp_path / "worker.log").read_text()
    assert "notify_application" in worker_log  # verbose, and it saw the deliveries
    for log in (worker_log, stack.api.log()):
        assert URL_TOKEN not in log and key not in log
