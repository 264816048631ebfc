"""Outbound webhooks: signed like the Videos API's, delivered at least once, and bent by fault rules."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import standardwebhooks
from webhook_receiver import Delivery, WebhookReceiver

from simulator.testing import LocalSimulator, RunningSimulator, start_simulator

#: The time scale of the simulators in tests/simulator (see conftest).
TIME_SCALE = 0.01

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def auth(sim: RunningSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


def create(http: httpx.Client, sim: RunningSimulator, prompt: str) -> str:
    response = http.post(f"{sim.base_url}/videos", data={"prompt": prompt}, headers=auth(sim))
    assert response.status_code == 200, response.text
    video_id: str = response.json()["id"]
    return video_id


def status_of(http: httpx.Client, sim: RunningSimulator, video_id: str) -> str:
    status: str = http.get(f"{sim.base_url}/videos/{video_id}", headers=auth(sim)).json()["status"]
    return status


def verify(secret: str, delivery: Delivery) -> Any:
    """Check a delivery with the standardwebhooks reference implementation."""
    return standardwebhooks.Webhook(secret).verify(delivery.body, delivery.headers)


def event_of(sim: RunningSimulator, video_id: str, *, state: str | None = None) -> dict[str, Any]:
    """The simulator's record of a job's event, waiting (bounded) until it reaches ``state``."""
    deadline = time.monotonic() + 20
    while True:
        events = [event for event in sim.webhook_events() if event["video_id"] == video_id]
        if events and (state is None or events[0]["state"] == state):
            return events[0]
        assert time.monotonic() < deadline, f"no event in state {state} for {video_id}: {events}"
        time.sleep(0.05)


def test_a_completed_job_is_announced_with_a_signed_thin_event(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver, webhook_secret: str
) -> None:
    video_id = create(http, hook_sim, "announce me [sim:never]")
    hook_sim.force_job(video_id, status="completed")

    [delivery] = receiver.wait_for(1)

    assert verify(webhook_secret, delivery) == delivery.event
    event = delivery.event
    assert set(event) == {"id", "object", "created_at", "type", "data"}
    assert event["id"].startswith("evt_")
    assert (event["object"], event["type"], event["data"]) == ("event", "video.completed", {"id": video_id})
    assert isinstance(event["created_at"], int)
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["webhook-signature"].startswith("v1,")


def test_the_openai_sdk_accepts_the_signature(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver, webhook_secret: str
) -> None:
    hook_sim.force_job(create(http, hook_sim, "sdk check [sim:never]"), status="completed")

    [delivery] = receiver.wait_for(1)

    with openai.OpenAI(api_key="unused", webhook_secret=webhook_secret) as client:
        client.webhooks.verify_signature(delivery.body, delivery.headers)


def test_a_failed_job_is_announced_as_video_failed(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver, webhook_secret: str
) -> None:
    video_id = create(http, hook_sim, "doomed [sim:fail:moderation_blocked] [sim:duration=20]")

    [delivery] = receiver.wait_for(1)

    verify(webhook_secret, delivery)
    assert (delivery.event["type"], delivery.event["data"]["id"]) == ("video.failed", video_id)
    assert status_of(http, hook_sim, video_id) == "failed"


def test_a_job_that_finishes_on_its_own_is_announced_once_the_status_says_so(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    video_id = create(http, hook_sim, "natural end [sim:duration=30]")

    [delivery] = receiver.wait_for(1)

    assert delivery.event["data"]["id"] == video_id
    assert status_of(http, hook_sim, video_id) == "completed"


def test_an_event_carries_a_hostile_id_verbatim(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    video_id = create(http, hook_sim, "[sim:id=unicode] [sim:duration=10]")

    [delivery] = receiver.wait_for(1)

    assert delivery.event["data"]["id"] == video_id
    assert not video_id.isascii()


def test_non_2xx_answers_are_retried_with_the_same_webhook_id_until_accepted(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver, webhook_secret: str
) -> None:
    receiver.answer(500, 503, 400)
    video_id = create(http, hook_sim, "retried [sim:never]")
    hook_sim.force_job(video_id, status="completed")

    deliveries = receiver.wait_for(4)

    assert [d.status for d in deliveries] == [500, 503, 400, 200]
    assert len({d.headers["webhook-id"] for d in deliveries}) == 1
    assert len({d.body for d in deliveries}) == 1
    for delivery in deliveries:
        verify(webhook_secret, delivery)
    event = event_of(hook_sim, video_id, state="delivered")
    assert (event["attempts"], event["deliveries"], event["responses"]) == (4, 1, [500, 503, 400, 200])
    assert hook_sim.stats()["webhooks"] == {
        "events": 1,
        "attempted": 4,
        "delivered": 1,
        "pending": 0,
        "failed": 0,
        "dropped": 0,
    }


def test_delivery_gives_up_after_the_configured_attempts(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    hook_sim.configure_webhooks(attempts=3)
    receiver.answer(500, 500, 500, 500)
    video_id = create(http, hook_sim, "never accepted [sim:never]")
    hook_sim.force_job(video_id, status="completed")

    event = event_of(hook_sim, video_id, state="failed")

    assert event["responses"] == [500, 500, 500]
    assert len(receiver.deliveries()) == 3
    assert hook_sim.stats()["webhooks"]["failed"] == 1


def test_connection_errors_are_retried_too(http: httpx.Client, hook_sim: RunningSimulator) -> None:
    # Nothing listens on the port of a socket that was bound and closed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook_sim.configure_webhooks(url=f"http://127.0.0.1:{port}/webhooks", attempts=2)
    video_id = create(http, hook_sim, "nobody home [sim:never]")
    hook_sim.force_job(video_id, status="completed")

    event = event_of(hook_sim, video_id, state="failed")

    assert event["attempts"] == 2
    assert all(isinstance(response, str) for response in event["responses"])


def test_no_events_are_made_while_no_webhook_url_is_configured(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    hook_sim.configure_webhooks(url=None)
    hook_sim.force_job(create(http, hook_sim, "unheard [sim:never]"), status="completed")
    hook_sim.configure_webhooks(url=receiver.url)
    heard = create(http, hook_sim, "heard [sim:never]")
    hook_sim.force_job(heard, status="completed")

    [delivery] = receiver.wait_for(1)

    assert delivery.event["data"]["id"] == heard
    assert [event["video_id"] for event in hook_sim.webhook_events()] == [heard]


# ----- fault rules ------------------------------------------------------------------------------


def test_drop_makes_the_event_but_never_sends_it(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    hook_sim.add_fault("webhook", "drop", match_prompt="lost", count=1)
    dropped = create(http, hook_sim, "lost event [sim:never]")
    hook_sim.force_job(dropped, status="completed")
    sent = create(http, hook_sim, "kept event [sim:never]")
    hook_sim.force_job(sent, status="completed")

    [delivery] = receiver.wait_for(1)

    assert delivery.event["data"]["id"] == sent
    event = event_of(hook_sim, dropped, state="dropped")
    assert (event["fault"], event["attempts"]) == ("drop", 0)
    assert hook_sim.stats()["webhooks"]["dropped"] == 1


def test_duplicate_delivers_the_same_event_several_times(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver, webhook_secret: str
) -> None:
    hook_sim.add_fault("webhook", "duplicate", times=3, count=1)
    video_id = create(http, hook_sim, "echo [sim:never]")
    hook_sim.force_job(video_id, status="completed")

    deliveries = receiver.wait_for(3)

    assert len({d.headers["webhook-id"] for d in deliveries}) == 1
    assert len({d.event["id"] for d in deliveries}) == 1
    for delivery in deliveries:
        verify(webhook_secret, delivery)
    event = event_of(hook_sim, video_id, state="delivered")
    assert (event["fault"], event["deliveries"]) == ("duplicate", 3)


def test_delay_holds_the_event_back(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    hook_sim.add_fault("webhook", "delay", delay=0.5, count=1)
    video_id = create(http, hook_sim, "late [sim:never]")

    forced = time.monotonic()
    hook_sim.force_job(video_id, status="completed")
    receiver.wait_for(1)

    assert time.monotonic() - forced >= 0.5
    assert event_of(hook_sim, video_id)["fault"] == "delay"


def test_delay_on_one_job_lets_a_later_job_be_announced_first(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    hook_sim.add_fault("webhook", "delay", delay=3.0, match_prompt="first")
    first = create(http, hook_sim, "first [sim:never]")
    second = create(http, hook_sim, "second [sim:never]")
    hook_sim.force_job(first, status="completed")
    hook_sim.force_job(second, status="completed")

    deliveries = receiver.wait_for(2)

    assert [d.event["data"]["id"] for d in deliveries] == [second, first]


def test_bad_signature_is_well_formed_but_verifies_against_nothing(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver, webhook_secret: str
) -> None:
    hook_sim.configure_webhooks(attempts=2)
    receiver.answer(400, 400)
    hook_sim.add_fault("webhook", "bad_signature", count=1)
    video_id = create(http, hook_sim, "forged [sim:never]")
    hook_sim.force_job(video_id, status="completed")

    deliveries = receiver.wait_for(2)

    for delivery in deliveries:
        assert delivery.headers["webhook-signature"].startswith("v1,")
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            verify(webhook_secret, delivery)
        with (
            openai.OpenAI(api_key="unused") as client,
            pytest.raises(openai.InvalidWebhookSignatureError),
        ):
            client.webhooks.verify_signature(delivery.body, delivery.headers, secret=webhook_secret)
    assert event_of(hook_sim, video_id, state="failed")["responses"] == [400, 400]


def test_expired_sends_a_correctly_signed_event_with_a_timestamp_older_than_five_minutes(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver, webhook_secret: str
) -> None:
    hook_sim.add_fault("webhook", "expired", count=1)
    hook_sim.force_job(create(http, hook_sim, "stale [sim:never]"), status="completed")

    [delivery] = receiver.wait_for(1)

    assert time.time() - int(delivery.headers["webhook-timestamp"]) > 300
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="too old"):
        verify(webhook_secret, delivery)
    with openai.OpenAI(api_key="unused") as client:
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.verify_signature(delivery.body, delivery.headers, secret=webhook_secret)
        # A replay, not a forgery: the signature itself is right.
        client.webhooks.verify_signature(
            delivery.body, delivery.headers, secret=webhook_secret, tolerance=3600
        )


def test_early_sends_the_event_before_the_status_of_a_forced_job_says_completed(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    # A generous lead: the status check below must land inside it even on a loaded machine.
    hook_sim.add_fault("webhook", "early", lead=5.0, count=1)
    video_id = create(http, hook_sim, "ahead of itself [sim:never]")
    hook_sim.force_job(video_id, status="completed")

    [delivery] = receiver.wait_for(1)
    seen_at_event = status_of(http, hook_sim, video_id)

    assert delivery.event["type"] == "video.completed"
    assert seen_at_event == "in_progress"
    deadline = time.monotonic() + 20
    while status_of(http, hook_sim, video_id) != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_early_sends_the_event_before_a_naturally_ending_job_completes(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    hook_sim.add_fault("webhook", "early", lead=5.0, match_prompt="eager")
    # The job ends about 6 s after creation, so its event is due after about 1 s.
    video_id = create(http, hook_sim, f"eager [sim:duration={int(6 / TIME_SCALE)}]")

    [delivery] = receiver.wait_for(1)

    assert delivery.event["data"]["id"] == video_id
    assert status_of(http, hook_sim, video_id) in ("queued", "in_progress")


def test_webhook_rules_only_take_webhook_actions(http: httpx.Client, hook_sim: RunningSimulator) -> None:
    for body in (
        {"route": "webhook", "action": "error"},
        {"route": "create", "action": "drop"},
        {"route": "any", "action": "duplicate"},
    ):
        response = http.post(f"{hook_sim.root_url}/_sim/faults", json=body)
        assert response.status_code == 400, body


def test_an_any_rule_never_touches_webhooks(
    http: httpx.Client, hook_sim: RunningSimulator, receiver: WebhookReceiver
) -> None:
    video_id = create(http, hook_sim, "spared [sim:never]")
    hook_sim.add_fault("any", "error", status=503)
    hook_sim.force_job(video_id, status="completed")

    [delivery] = receiver.wait_for(1)

    assert delivery.event["data"]["id"] == video_id


# ----- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"url": "http://192.0.2.1/webhooks"},
        {"url": "ftp://127.0.0.1/webhooks"},
        {"secret": "not-a-whsec"},
        {"secret": "whsec_***"},
        {"attempts": 0},
        {"colour": "blue"},
    ],
)
def test_invalid_webhook_settings_are_refused(
    http: httpx.Client, hook_sim: RunningSimulator, settings: dict[str, Any]
) -> None:
    before = hook_sim.webhooks()

    response = http.post(f"{hook_sim.root_url}/_sim/webhooks", json=settings)

    assert response.status_code == 400
    after = hook_sim.webhooks()
    assert (after["url"], after["attempts"]) == (before["url"], before["attempts"])


def test_the_secret_is_never_shown(hook_sim: RunningSimulator, webhook_secret: str) -> None:
    described = hook_sim.webhooks()

    assert described["secret_set"] is True
    assert webhook_secret not in str(described)
    assert webhook_secret not in str(hook_sim.stats())


def test_start_simulator_passes_webhook_settings_to_the_cli(
    http: httpx.Client, sim_media_dir: Path, receiver: WebhookReceiver, webhook_secret: str
) -> None:
    with start_simulator(
        time_scale=TIME_SCALE,
        data_dir=sim_media_dir,
        webhook_url=receiver.url,
        webhook_secret=webhook_secret,
        webhook_attempts=2,
    ) as sim:
        assert (sim.webhooks()["url"], sim.webhooks()["attempts"]) == (receiver.url, 2)
        video_id = create(http, sim, "from the cli [sim:never]")
        sim.force_job(video_id, status="completed")

        [delivery] = receiver.wait_for(1)

    verify(webhook_secret, delivery)
    assert delivery.event["data"]["id"] == video_id


def test_the_cli_refuses_a_webhook_url_without_a_secret() -> None:
    env = {key: value for key, value in os.environ.items() if key != "OPENAI_WEBHOOK_SECRET"}
    process = subprocess.run(
        [sys.executable, "-m", "simulator", "--webhook-url", "http://127.0.0.1:9/webhooks"],
        capture_output=True,
        env=env,
        timeout=30,
    )

    assert process.returncode == 2
    assert b"secret" in process.stderr


async def test_an_in_process_simulator_announces_a_job_once_its_fake_clock_passes_the_end(
    local_sim: Callable[..., Awaitable[LocalSimulator]], receiver: WebhookReceiver, webhook_secret: str
) -> None:
    sim = await local_sim(webhook_url=receiver.url, webhook_secret=webhook_secret)
    created = await sim.http.post("/v1/videos", data={"prompt": "on a fake clock [sim:duration=60]"})
    video_id = (await created.json())["id"]

    sim.clock.advance(61)
    [delivery] = await asyncio.to_thread(receiver.wait_for, 1)

    verify(webhook_secret, delivery)
    assert delivery.event["data"]["id"] == video_id
    assert delivery.event["created_at"] >= int(sim.clock())


def test_webhook_rules_are_listed_with_their_parameters(
    http: httpx.Client, hook_sim: RunningSimulator
) -> None:
    hook_sim.add_fault("webhook", "early", lead=2.5, match_prompt="x", count=1)

    [rule] = http.get(f"{hook_sim.root_url}/_sim/faults").json()["rules"]

    assert (rule["route"], rule["action"], rule["lead"], rule["match_prompt"], rule["count"]) == (
        "webhook",
        "early",
        2.5,
        "x",
        1,
    )
