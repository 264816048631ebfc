"""The Sora client against a hostile Videos API: bombs, oversize bodies, hostile ids, junk, bad links.

Every answer here comes from the simulator's hostile fault rules (``simulator/hostile.py``) or, where
the simulator has no rule for it, a small loopback server in the test. Runs once per dialect.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from simulator.testing import RunningSimulator
from sora_temporal.errors import is_retryable
from sora_temporal.netguard import UrlPolicy
from sora_temporal.sora import SoraClient, SoraInvalidRequest, Video
from sora_temporal.sora.client import MAX_JSON_BYTES
from sora_temporal.sora.errors import SoraProtocolError, SoraResponseTooLarge, SoraUnsafeResponse
from sora_temporal.sora.models import is_valid_video_id
from sora_temporal.types import RemoteStatus

WaitFor = Callable[[SoraClient, str, Callable[[Video], bool]], Awaitable[Video]]
MakeClient = Callable[..., SoraClient]

QUICK = "[sim:duration=1]"
BOMB_BYTES = 512 * 1024 * 1024
# Generous next to the caps (1 MiB for JSON, 8 MiB for the downloads below), far below a bomb.
PEAK_LIMIT_BYTES = 48 * 1024 * 1024
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
HOSTILE_IDS = ("dot", "dotdot", "long", "slash", "query", "space", "unicode")


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _requests(sim: RunningSimulator) -> int:
    counts: dict[str, int] = sim.stats()["requests"]
    return sum(counts.values())


def _completed(video: Video) -> bool:
    return video.status is RemoteStatus.COMPLETED


async def _create(sora: SoraClient, prompt: str) -> Video:
    return await sora.create(prompt=prompt, model="sora-2", size="1280x720", seconds=4)


class PeakMemory:
    """Python's peak allocation while the block runs (tracemalloc sees every bytes object)."""

    def __enter__(self) -> PeakMemory:
        tracemalloc.start()
        self.peak = 0
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


# --- bodies bigger than they look ------------------------------------------------------------------


@pytest.fixture
async def client(sora_sim: RunningSimulator) -> AsyncIterator[SoraClient]:
    """As ``conftest.py``'s, but patient: the simulator compresses its first 512 MiB bomb while the
    client waits, which on a loaded machine takes longer than the usual 5 s read timeout."""
    async with SoraClient(base_url=sora_sim.base_url, api_key=sora_sim.api_key, timeout=60.0) as sora:
        yield sora
    sora_sim.clear_faults()


async def test_a_gzip_bomb_status_answer_is_refused_while_it_decodes(
    client: SoraClient, sora_sim: RunningSimulator
) -> None:
    tag = _tag()
    video = await _create(client, f"bomb status {tag}")
    sora_sim.add_fault("retrieve", "gzip_bomb", size=BOMB_BYTES, match_prompt=tag, count=1)

    with PeakMemory() as memory, pytest.raises(SoraResponseTooLarge) as caught:
        await client.retrieve(video.id)

    assert memory.peak < PEAK_LIMIT_BYTES
    assert caught.value.code == "response_too_large" and is_retryable(caught.value)
    assert (await client.retrieve(video.id)).video.id == video.id


async def test_a_gzip_bomb_list_answer_is_refused(client: SoraClient, sora_sim: RunningSimulator) -> None:
    sora_sim.add_fault("list", "gzip_bomb", size=BOMB_BYTES, count=1)

    with PeakMemory() as memory, pytest.raises(SoraResponseTooLarge):
        await client.list(limit=5)

    assert memory.peak < PEAK_LIMIT_BYTES


async def test_a_gzip_bomb_create_answer_is_refused_and_may_have_created(
    client: SoraClient, sora_sim: RunningSimulator
) -> None:
    tag = _tag()
    before = sora_sim.creates()
    sora_sim.add_fault("create", "gzip_bomb", size=BOMB_BYTES, match_prompt=tag, count=1)

    with PeakMemory() as memory, pytest.raises(SoraResponseTooLarge) as caught:
        await _create(client, f"bomb create {tag}")

    assert memory.peak < PEAK_LIMIT_BYTES
    # The job was made: the submit activity looks for it rather than creating another.
    assert caught.value.may_have_created is True
    assert sora_sim.creates() == before + 1


async def test_a_json_answer_over_one_mebibyte_is_refused(
    client: SoraClient, sora_sim: RunningSimulator
) -> None:
    tag = _tag()
    video = await _create(client, f"oversize {tag}")
    sora_sim.add_fault("retrieve", "oversize", size=2 * MAX_JSON_BYTES, match_prompt=tag, count=1)

    with pytest.raises(SoraResponseTooLarge, match="limit is 1048576"):
        await client.retrieve(video.id)


async def test_a_gzip_bomb_download_is_cut_off_at_the_download_limit(
    client: SoraClient, sora_sim: RunningSimulator, wait_for: WaitFor
) -> None:
    tag = _tag()
    video = await wait_for(client, (await _create(client, f"{QUICK} bomb content {tag}")).id, _completed)
    sora_sim.add_fault("content", "gzip_bomb", size=BOMB_BYTES, match_prompt=tag, count=1)
    received = 0

    with PeakMemory() as memory:
        async with client.stream_content(video.id, max_bytes=8 * 1024 * 1024) as stream:
            assert stream.content_length is None  # encoded: no honest length
            with pytest.raises(SoraResponseTooLarge):
                async for chunk in stream.aiter_bytes(1024 * 1024):
                    received += len(chunk)

    assert received <= 8 * 1024 * 1024
    assert memory.peak < PEAK_LIMIT_BYTES


async def test_a_download_declaring_more_than_the_limit_is_refused_before_reading(
    client: SoraClient, finished: Video
) -> None:
    with pytest.raises(SoraResponseTooLarge, match="limit is 1000"):
        async with client.stream_content(finished.id, max_bytes=1000):
            pass


# --- encodings: asked for identity; gzip decoded under the cap, anything else refused -------------


@pytest.fixture
async def encoding_gateway() -> AsyncIterator[str]:
    """A loopback gateway whose list answer is encoded as its ``after`` cursor says (``_`` = ``, ``)."""
    page = json.dumps({"object": "list", "data": [], "has_more": False}).encode()

    async def listing(request: web.Request) -> web.Response:
        encoding = request.query["after"].replace("_", ", ")
        body = page
        for layer in encoding.split(", "):
            body = gzip.compress(body) if layer == "gzip" else b"\x1b\x00\x00not-brotli"
        return web.Response(
            body=body, content_type="application/json", headers={"Content-Encoding": encoding}
        )

    app = web.Application()
    app.router.add_get("/v1/videos", listing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_a_gzipped_answer_is_still_read(make_client: MakeClient, encoding_gateway: str) -> None:
    sora = make_client(base_url=encoding_gateway)

    page = await sora.list(after="gzip_gzip")

    assert page.data == []


async def test_an_encoding_that_is_not_decoded_is_refused(
    make_client: MakeClient, encoding_gateway: str
) -> None:
    sora = make_client(base_url=encoding_gateway)

    with pytest.raises(SoraProtocolError, match="'br' is not accepted"):
        await sora.list(after="br")


# --- ids: one rule for every id received or put in a path ----------------------------------------


@pytest.mark.parametrize("kind", HOSTILE_IDS)
async def test_a_hostile_id_in_a_create_answer_is_refused_for_good(
    client: SoraClient, sora_sim: RunningSimulator, kind: str
) -> None:
    tag = _tag()
    sora_sim.add_fault("create", "hostile_id", id_kind=kind, match_prompt=tag, count=1)

    with pytest.raises(SoraUnsafeResponse) as caught:
        await _create(client, f"hostile id {tag}")

    err = caught.value
    assert (err.code, is_retryable(err), err.may_have_created) == ("invalid_video_id", False, True)
    assert len(err.message) < 500


@pytest.mark.parametrize("kind", ["dotdot", "long", "slash"])
async def test_a_hostile_id_in_a_status_answer_is_refused_for_good(
    client: SoraClient, sora_sim: RunningSimulator, kind: str
) -> None:
    tag = _tag()
    video = await _create(client, f"hostile status {tag}")
    sora_sim.add_fault("retrieve", "hostile_id", id_kind=kind, match_prompt=tag, count=1)

    with pytest.raises(SoraUnsafeResponse) as caught:
        await client.retrieve(video.id)

    assert (caught.value.code, is_retryable(caught.value)) == ("invalid_video_id", False)


async def test_list_entries_with_hostile_ids_are_skipped_not_fatal(
    client: SoraClient, sora_sim: RunningSimulator
) -> None:
    await _create(client, f"listed {_tag()}")
    sora_sim.add_fault("list", "hostile_id", id_kind="dotdot", count=1)

    page = await client.list(limit=10)

    assert page.data == []
    assert page.first_id is None and page.last_id is None


@pytest.mark.parametrize(
    "call",
    [
        lambda sora: sora.retrieve(".."),
        lambda sora: sora.retrieve("."),
        lambda sora: sora.delete("video_1/../../files"),
        lambda sora: sora.retrieve("video_1?variant=thumbnail"),
        lambda sora: sora.retrieve("v" * 129),
        lambda sora: sora.list(after="../x"),
    ],
)
async def test_an_id_that_breaks_the_rule_never_goes_into_a_request(
    client: SoraClient, sora_sim: RunningSimulator, call: Callable[[SoraClient], Awaitable[object]]
) -> None:
    before = _requests(sora_sim)

    with pytest.raises(SoraInvalidRequest) as caught:
        await call(client)

    assert (caught.value.code, is_retryable(caught.value)) == ("invalid_video_id", False)
    assert _requests(sora_sim) == before


# --- numbers: junk in one field never fails a whole answer -------------------------------------


@pytest.mark.parametrize("junk", ["overflow", "garbage"])
async def test_junk_numbers_in_a_status_answer_become_unknown(
    client: SoraClient, sora_sim: RunningSimulator, junk: str
) -> None:
    tag = _tag()
    video = await _create(client, f"junk {tag}")
    sora_sim.add_fault("retrieve", "junk_fields", junk=junk, match_prompt=tag, count=1)

    got = (await client.retrieve(video.id)).video

    assert (got.id, got.created_at, got.completed_at, got.expires_at) == (video.id, None, None, None)
    assert 0 <= got.progress <= 100


async def test_a_list_page_with_junk_numbers_still_lists_every_job(client: SoraClient) -> None:
    tag = _tag()
    video = await _create(client, f"[sim:junk=overflow] listed junk {tag}")

    page = await client.list(limit=100)

    (listed,) = [v for v in page.data if v.id == video.id]
    assert listed.created_at is None and 0 <= listed.progress <= 100
    assert all(is_valid_video_id(v.id) for v in page.data)


# --- download links from status answers ------------------------------------------------------------


async def _with_link(sora: SoraClient, sim: RunningSimulator, wait_for: WaitFor, **rule: object) -> Video:
    tag = _tag()
    sim.add_fault("retrieve", "download_url", match_prompt=tag, **rule)
    created = await _create(sora, f"{QUICK} linked {tag}")
    video = await wait_for(sora, created.id, _completed)
    assert video.download_url is not None
    return video


async def test_a_download_link_to_the_metadata_address_is_never_fetched(
    client: SoraClient, sora_sim: RunningSimulator, wait_for: WaitFor
) -> None:
    video = await _with_link(client, sora_sim, wait_for, url=METADATA)

    with pytest.raises(SoraUnsafeResponse, match="only https") as caught:
        async with client.stream_content(video.id, url=video.download_url):
            pass

    assert (caught.value.code, is_retryable(caught.value)) == ("unsafe_url", False)
    assert "security-credentials" in (video.download_url or "")


async def test_a_redirect_chain_from_the_api_to_the_metadata_address_is_refused_at_the_last_hop(
    make_client: MakeClient, sora_sim: RunningSimulator, wait_for: WaitFor
) -> None:
    # Even with private networks allowed, link-local (cloud metadata) stays out of reach.
    sora = make_client(url_policy=UrlPolicy(allow_private=True))
    video = await _with_link(sora, sora_sim, wait_for, url=METADATA, hops=2)
    before = sora_sim.stats()["file_host"]["redirects"]

    with pytest.raises(SoraUnsafeResponse, match="link-local"):
        async with sora.stream_content(video.id, url=video.download_url):
            pass

    assert sora_sim.stats()["file_host"]["redirects"] - before == 2


async def test_more_than_three_redirects_are_not_followed(
    client: SoraClient, sora_sim: RunningSimulator, wait_for: WaitFor
) -> None:
    target = f"{sora_sim.root_url}/_files/sample.jpg"
    video = await _with_link(client, sora_sim, wait_for, url=target, hops=4)

    with pytest.raises(SoraUnsafeResponse, match="more than 3 redirects"):
        async with client.stream_content(video.id, url=video.download_url):
            pass


async def test_a_download_link_to_another_loopback_port_gets_no_connection(
    client: SoraClient, sora_sim: RunningSimulator, wait_for: WaitFor
) -> None:
    connections = 0

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        video = await _with_link(client, sora_sim, wait_for, url=f"http://localhost:{port}/admin")
        with pytest.raises(SoraUnsafeResponse):
            async with client.stream_content(video.id, url=video.download_url):
                pass
        https = f"https://localhost:{port}/admin"
        with pytest.raises(SoraUnsafeResponse, match="loopback"):
            async with client.stream_content(video.id, url=https):
                pass
    finally:
        server.close()
        await server.wait_closed()

    assert connections == 0


async def test_the_download_host_allow_list_applies_to_links_off_the_api_origin(
    make_client: MakeClient, sora_sim: RunningSimulator, wait_for: WaitFor
) -> None:
    # The simulator's file host under another name is another origin: no key, and the allow-list rules.
    link = f"{sora_sim.root_url.replace('127.0.0.1', 'localhost')}/_files/sample.jpg"
    refused = make_client(url_policy=UrlPolicy(allow_private=True, allowed_hosts=("cdn.example.com",)))
    allowed = make_client(url_policy=UrlPolicy(allow_private=True, allowed_hosts=("localhost",)))
    video = await _with_link(refused, sora_sim, wait_for, url=link)

    with pytest.raises(SoraUnsafeResponse, match="allow-list"):
        async with refused.stream_content(video.id, url=video.download_url):
            pass
    async with allowed.stream_content(video.id, url=video.download_url) as stream:
        body = b"".join([chunk async for chunk in stream.aiter_bytes()])

    assert body[:3] == b"\xff\xd8\xff"
