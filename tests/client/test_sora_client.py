"""The Sora client against the real simulator over loopback, in both protocol dialects.

Every test here runs twice (``dialect`` = openai, gateway); fixtures are in this folder's conftest.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from simulator.testing import RunningSimulator
from sora_temporal.errors import is_retryable
from sora_temporal.netguard import UrlPolicy
from sora_temporal.sora import (
    AuthStyle,
    ReferenceImage,
    SoraAuthenticationError,
    SoraClient,
    SoraConflict,
    SoraConnectionError,
    SoraError,
    SoraInvalidRequest,
    SoraNotFound,
    SoraRateLimited,
    SoraServerError,
    SoraTimeout,
    Video,
)
from sora_temporal.types import RemoteStatus

WaitFor = Callable[[SoraClient, str, Callable[[Video], bool]], Awaitable[Video]]
MakePng = Callable[[int, int], ReferenceImage]
MakeClient = Callable[..., SoraClient]

# Realistic seconds; at the tests' time scale such a job is done in about 10 ms.
QUICK = "[sim:duration=1]"
MAGIC = {
    "video": lambda head: head[4:8] == b"ftyp",
    "thumbnail": lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP",
    "spritesheet": lambda head: head[:3] == b"\xff\xd8\xff",
}


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _requests(sim: RunningSimulator) -> int:
    counts: dict[str, int] = sim.stats()["requests"]
    return sum(counts.values())


def _finished(video: Video) -> bool:
    return video.status in (RemoteStatus.COMPLETED, RemoteStatus.FAILED)


async def _create(sora: SoraClient, prompt: str, /, **overrides: object) -> Video:
    options: dict[str, object] = {"prompt": prompt, "model": "sora-2", "size": "1280x720", "seconds": 4}
    options.update(overrides)
    return await sora.create(**options)  # type: ignore[arg-type]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- create ----------------------------------------------------------------------------------


async def test_create_returns_the_new_job(client: SoraClient) -> None:
    prompt = f"a red kite over dunes {_tag()}"
    video = await client.create(prompt=prompt, model="sora-2", size="720x1280", seconds=8)
    assert video.id.startswith("video_")
    assert video.status is RemoteStatus.QUEUED
    assert (video.prompt, video.model, video.size, video.seconds) == (prompt, "sora-2", "720x1280", "8")
    assert video.created_at is not None and abs(video.created_at - time.time()) < 60


async def test_create_uploads_reference_image(
    client: SoraClient, sora_sim: RunningSimulator, png: MakePng
) -> None:
    video = await _create(client, f"start from this frame {_tag()}", reference=png(1280, 720))
    job = next(job for job in sora_sim.jobs() if job["id"] == video.id)
    assert job["has_input_reference"] is True
    assert job["input_reference_size"] == [1280, 720]


async def test_reference_image_of_wrong_size_is_refused_by_server(
    client: SoraClient, sora_sim: RunningSimulator, png: MakePng
) -> None:
    before = sora_sim.creates()
    with pytest.raises(SoraInvalidRequest) as caught:
        await _create(client, f"mismatched frame {_tag()}", reference=png(640, 480))
    err = caught.value
    assert (err.status_code, err.param, is_retryable(err), err.may_have_created) == (
        400,
        "input_reference",
        False,
        False,
    )
    assert sora_sim.creates() == before


async def test_idempotency_key_is_sent(client: SoraClient, sora_sim: RunningSimulator, dialect: str) -> None:
    key = f"wf-{_tag()}/run-1"
    first = await _create(client, f"idempotent {key}", idempotency_key=key)
    second = await _create(client, f"idempotent {key}", idempotency_key=key)
    recorded = {job["id"]: job["idempotency_key"] for job in sora_sim.jobs()}
    assert recorded[first.id] == key
    # Gateways honour the key and replay the first job; OpenAI only records it.
    assert (second.id == first.id) is (dialect == "gateway")


async def test_free_form_model_accepted_only_by_gateways(client: SoraClient, dialect: str) -> None:
    create = _create(
        client, f"a runway shot {_tag()}", model="runwayml/gen4_turbo", size="1280x768", seconds=5
    )
    if dialect == "gateway":
        video = await create
        assert video.model == "runwayml/gen4_turbo"
    else:
        with pytest.raises(SoraInvalidRequest) as caught:
            await create
        assert caught.value.param == "model"


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"size": "1920x1080"}, "size"),
        ({"seconds": 5}, "seconds"),
        ({"model": "sora-3"}, "model"),
        ({"model": "veo", "size": "big"}, "size"),
        ({"reference": ReferenceImage(b"GIF89a....", "a.gif", "image/gif")}, "input_reference"),
        ({"reference": ReferenceImage(b"not a png", "a.png", "image/png")}, "input_reference"),
    ],
)
async def test_invalid_request_never_reaches_the_server(
    client: SoraClient, sora_sim: RunningSimulator, overrides: dict[str, object], param: str
) -> None:
    before = _requests(sora_sim)
    with pytest.raises(SoraInvalidRequest) as caught:
        await _create(client, "a valid prompt", **overrides)
    err = caught.value
    assert (err.param, err.status_code, is_retryable(err), err.may_have_created) == (
        param,
        None,
        False,
        False,
    )
    assert err.message.startswith("create video: ")
    assert _requests(sora_sim) == before


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda sora: sora.list(order="newest"), "order"),
        (lambda sora: sora.list(limit=0), "limit"),
        (lambda sora: sora.retrieve(""), "video_id"),
        (lambda sora: sora.delete(" "), "video_id"),
    ],
)
async def test_invalid_arguments_never_reach_the_server(
    client: SoraClient,
    sora_sim: RunningSimulator,
    call: Callable[[SoraClient], Awaitable[object]],
    param: str,
) -> None:
    before = _requests(sora_sim)
    with pytest.raises(SoraInvalidRequest) as caught:
        await call(client)
    assert caught.value.param == param
    assert _requests(sora_sim) == before


async def test_unknown_content_variant_never_reaches_the_server(
    client: SoraClient, sora_sim: RunningSimulator, finished: Video
) -> None:
    before = _requests(sora_sim)
    with pytest.raises(SoraInvalidRequest) as caught:
        async with client.stream_content(finished.id, variant="poster"):
            pass
    assert caught.value.param == "variant"
    assert _requests(sora_sim) == before


# --- retrieve --------------------------------------------------------------------------------


async def test_retrieve_carries_the_poll_after_hint(client: SoraClient, sora_sim: RunningSimulator) -> None:
    video = await _create(client, f"poll me {_tag()}")
    got = await client.retrieve(video.id)
    assert got.video.id == video.id
    expected = max(20, round(10_000 * sora_sim.stats()["time_scale"])) / 1000
    assert got.poll_after_seconds == pytest.approx(expected)


async def test_running_job_is_in_progress_in_both_dialects(
    client: SoraClient, dialect: str, wait_for: WaitFor
) -> None:
    video = await _create(client, f"[sim:never] a slow river {_tag()}")
    running = await wait_for(client, video.id, lambda v: v.status is not RemoteStatus.QUEUED)
    assert running.status is RemoteStatus.IN_PROGRESS
    assert running.raw_status == ("processing" if dialect == "gateway" else "in_progress")
    assert 0 <= running.progress < 100


async def test_failed_job_reports_its_error(client: SoraClient, wait_for: WaitFor) -> None:
    video = await _create(client, f"{QUICK}[sim:fail:moderation_blocked] {_tag()}")
    failed = await wait_for(client, video.id, _finished)
    assert failed.status is RemoteStatus.FAILED
    assert failed.error_code == "moderation_blocked"
    assert failed.error_message


async def test_completed_job_has_download_url_only_on_gateways(finished: Video, dialect: str) -> None:
    assert finished.status is RemoteStatus.COMPLETED
    assert finished.progress == 100
    assert (finished.download_url is not None) is (dialect == "gateway")


async def test_unknown_video_is_not_found(client: SoraClient) -> None:
    with pytest.raises(SoraNotFound) as caught:
        await client.retrieve("video_does_not_exist")
    assert (caught.value.status_code, is_retryable(caught.value)) == (404, False)


# --- list and delete -------------------------------------------------------------------------


async def test_list_pages_through_jobs(client: SoraClient) -> None:
    tag = _tag()
    created = [(await _create(client, f"page {tag} #{n}")).id for n in range(3)]
    seen: list[str] = []
    first = await client.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    page = first
    while True:
        seen.extend(video.id for video in page.data)
        assert page.last_id == page.data[-1].id
        if not page.has_more:
            break
        page = await client.list(after=page.last_id, limit=2)
    assert len(seen) == len(set(seen))
    mine = [video_id for video_id in seen if video_id in created]
    assert mine == list(reversed(created))  # newest first


async def test_list_ascending_starts_with_the_oldest(client: SoraClient) -> None:
    ascending = await client.list(limit=1, order="asc")
    descending = await client.list(limit=1, order="desc")
    oldest, newest = ascending.data[0], descending.data[0]
    assert oldest.created_at is not None and newest.created_at is not None
    assert oldest.created_at <= newest.created_at


async def test_delete_finished_job(client: SoraClient, wait_for: WaitFor) -> None:
    video = await _create(client, f"{QUICK} delete me {_tag()}")
    await wait_for(client, video.id, _finished)
    assert await client.delete(video.id) is True
    with pytest.raises(SoraNotFound):
        await client.retrieve(video.id)


async def test_delete_running_job_is_refused(client: SoraClient) -> None:
    video = await _create(client, f"[sim:never] still rendering {_tag()}")
    with pytest.raises(SoraInvalidRequest) as caught:
        await client.delete(video.id)
    assert (caught.value.status_code, is_retryable(caught.value)) == (400, False)


# --- content ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["video", "thumbnail", "spritesheet"])
async def test_content_variants(client: SoraClient, finished: Video, dialect: str, variant: str) -> None:
    if dialect == "gateway" and variant != "video":
        # Gateways serve only the MP4; the project records the other variants as absent.
        with pytest.raises(SoraNotFound):
            async with client.stream_content(finished.id, variant=variant):
                pass
        return
    async with client.stream_content(finished.id, variant=variant) as stream:
        body = b"".join([chunk async for chunk in stream.aiter_bytes(64 * 1024)])
    assert MAGIC[variant](body[:12])
    assert stream.content_length == len(body)
    assert stream.content_type is not None


async def test_a_download_url_is_used_where_the_status_carries_one(
    client: SoraClient, sora_sim: RunningSimulator, finished: Video, dialect: str
) -> None:
    if dialect != "gateway":
        assert finished.download_url is None  # OpenAI serves content only from /content
        return
    assert finished.download_url is not None
    before = sora_sim.stats()["requests"]
    async with client.stream_content(finished.id, url=finished.download_url) as stream:
        body = b"".join([chunk async for chunk in stream.aiter_bytes()])
    after = sora_sim.stats()["requests"]
    assert MAGIC["video"](body[:12])
    assert (after["files"] - before["files"], after["content"] - before["content"]) == (1, 0)


async def test_content_of_a_running_job_is_not_found(client: SoraClient) -> None:
    video = await _create(client, f"[sim:never] not yet {_tag()}")
    with pytest.raises(SoraNotFound):
        async with client.stream_content(video.id):
            pass


async def test_api_key_is_not_sent_to_another_origin(
    make_client: MakeClient, sora_sim: RunningSimulator, finished: Video
) -> None:
    # The same simulator under two names: to the client, 127.0.0.1 and localhost are different
    # origins, so a download link naming the other one must go out without the key. (Loopback
    # links are allowed here, as ALLOW_PRIVATE_URLS does; by default they are refused outright.)
    other_name = sora_sim.base_url.replace("127.0.0.1", "localhost")
    sora = make_client(base_url=other_name, url_policy=UrlPolicy(allow_private=True))
    same_origin = f"{other_name}/videos/{finished.id}/content"
    async with sora.stream_content(finished.id, url=same_origin) as stream:
        assert MAGIC["video"]((await anext(stream.aiter_bytes(64)))[:12])
    foreign = f"{sora_sim.base_url}/videos/{finished.id}/content"
    with pytest.raises(SoraAuthenticationError):
        async with sora.stream_content(finished.id, url=foreign):
            pass


# --- authentication --------------------------------------------------------------------------


async def test_wrong_key_is_an_authentication_error(make_client: MakeClient) -> None:
    sora = make_client(api_key="sk-wrong-key-123456")
    with pytest.raises(SoraAuthenticationError) as caught:
        await sora.list()
    err = caught.value
    assert (err.status_code, is_retryable(err), err.may_have_created) == (401, False, False)
    assert err.message.startswith("list videos: HTTP 401")
    assert "Incorrect API key" in err.message
    assert "sk-wrong-key-123456" not in err.message


async def test_missing_key_is_an_authentication_error(make_client: MakeClient) -> None:
    with pytest.raises(SoraAuthenticationError):
        await make_client(api_key=None).list()


async def test_azure_api_key_header(make_client: MakeClient, wait_for: WaitFor) -> None:
    sora = make_client(auth_style=AuthStyle.API_KEY)
    video = await _create(sora, f"{QUICK} azure {_tag()}")
    done = await wait_for(sora, video.id, _finished)
    async with sora.stream_content(done.id) as stream:
        assert MAGIC["video"]((await anext(stream.aiter_bytes(64)))[:12])


# --- faults ----------------------------------------------------------------------------------


async def test_rate_limit_is_retryable_after_the_advertised_delay(
    client: SoraClient, sora_sim: RunningSimulator
) -> None:
    video = await _create(client, f"rate limited {_tag()}")
    sora_sim.add_fault("retrieve", "rate_limit", retry_after=2.5, count=1)
    with pytest.raises(SoraRateLimited) as caught:
        await client.retrieve(video.id)
    err = caught.value
    assert (err.status_code, is_retryable(err), err.may_have_created) == (429, True, False)
    assert err.retry_after == pytest.approx(2.5)
    assert (await client.retrieve(video.id)).video.id == video.id


@pytest.mark.parametrize(
    ("status", "cls", "retryable", "may_have_created"),
    [
        (500, SoraServerError, True, True),
        (502, SoraServerError, True, True),
        (503, SoraServerError, True, True),
        (408, SoraServerError, True, True),
        (409, SoraConflict, True, False),
        (403, SoraAuthenticationError, False, False),
    ],
)
async def test_create_error_status_mapping(
    client: SoraClient,
    sora_sim: RunningSimulator,
    status: int,
    cls: type[SoraError],
    retryable: bool,
    may_have_created: bool,
) -> None:
    sora_sim.add_fault("create", "error", status=status, count=1)
    with pytest.raises(SoraError) as caught:
        await _create(client, f"error {status} {_tag()}")
    err = caught.value
    assert type(err) is cls
    assert (err.status_code, is_retryable(err), err.may_have_created) == (status, retryable, may_have_created)


async def test_reset_before_processing_is_ambiguous(client: SoraClient, sora_sim: RunningSimulator) -> None:
    before = sora_sim.creates()
    sora_sim.add_fault("create", "reset", count=1)
    with pytest.raises(SoraConnectionError) as caught:
        await _create(client, f"reset {_tag()}")
    err = caught.value
    assert not isinstance(err, SoraTimeout)
    # Nothing was created, but from the client's side this is indistinguishable from a lost answer.
    assert (err.status_code, is_retryable(err), err.may_have_created) == (None, True, True)
    assert sora_sim.creates() == before


@pytest.mark.parametrize(("mode", "cls"), [("error", SoraServerError), ("reset", SoraConnectionError)])
async def test_lost_create_response_may_have_created(
    client: SoraClient, sora_sim: RunningSimulator, mode: str, cls: type[SoraError]
) -> None:
    before = sora_sim.creates()
    sora_sim.add_fault("create", "lose_response", status=500, mode=mode, count=1)
    with pytest.raises(SoraError) as caught:
        await _create(client, f"lost answer {mode} {_tag()}")
    assert type(caught.value) is cls
    assert (is_retryable(caught.value), caught.value.may_have_created) == (True, True)
    assert sora_sim.creates() == before + 1


async def test_connection_refused_never_created(make_client: MakeClient) -> None:
    sora = make_client(base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(SoraConnectionError) as caught:
        await _create(sora, "nobody is listening")
    err = caught.value
    assert (err.status_code, is_retryable(err), err.may_have_created) == (None, True, False)
    assert err.message.startswith("create video: ")


async def test_slow_create_times_out_and_may_have_created(
    make_client: MakeClient, sora_sim: RunningSimulator
) -> None:
    sora = make_client(timeout=0.2)
    before = sora_sim.creates()
    sora_sim.add_fault("create", "slow", delay=0.6, count=1)
    with pytest.raises(SoraTimeout) as caught:
        await _create(sora, f"slow {_tag()}")
    assert (is_retryable(caught.value), caught.value.may_have_created) == (True, True)
    # The server carried on after the client gave up: the job exists, as may_have_created warned.
    deadline = time.monotonic() + 5
    while sora_sim.creates() == before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sora_sim.creates() == before + 1


async def test_truncated_download_fails_while_reading(
    client: SoraClient, sora_sim: RunningSimulator, finished: Video
) -> None:
    sora_sim.add_fault("content", "truncate", count=1)
    received = 0
    async with client.stream_content(finished.id, url=finished.download_url) as stream:
        with pytest.raises(SoraConnectionError) as caught:
            async for chunk in stream.aiter_bytes(64 * 1024):
                received += len(chunk)
    assert stream.content_length is not None and received < stream.content_length
    assert is_retryable(caught.value) is True
    assert "broke off" in caught.value.message
