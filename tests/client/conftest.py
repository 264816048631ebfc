"""Fixtures for the Sora client tests: one real simulator per dialect, reached over loopback."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from simulator.testing import RunningSimulator, start_simulator
from sora_temporal.sora import ReferenceImage, SoraClient, Video
from sora_temporal.types import RemoteStatus

API_KEY = "sk-sim-test"
DIALECTS = ("openai", "gateway")
# Fast enough that a 4 s sora-2 clip is done in well under a second, slow enough to observe it run.
TIME_SCALE = 0.01
WAIT_SECONDS = 15.0


@pytest.fixture(scope="session", params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    """Every simulator-backed test runs once per protocol dialect."""
    value: str = request.param
    return value


@pytest.fixture(scope="session")
def sora_sim(dialect: str) -> Iterator[RunningSimulator]:
    """One simulator per dialect for the whole session; tests clear its faults, never its jobs."""
    with start_simulator(dialect=dialect, time_scale=TIME_SCALE, seed=0, api_key=API_KEY) as running:
        yield running


@pytest.fixture
async def client(sora_sim: RunningSimulator) -> AsyncIterator[SoraClient]:
    """A client with the right key; fault rules a test leaves behind (it failed) are cleared after it."""
    async with SoraClient(base_url=sora_sim.base_url, api_key=sora_sim.api_key, timeout=5.0) as sora:
        yield sora
    sora_sim.clear_faults()


@pytest.fixture
async def make_client(sora_sim: RunningSimulator) -> AsyncIterator[Callable[..., SoraClient]]:
    """Build clients with other settings (key, auth style, timeout, base URL); closed afterwards."""
    made: list[SoraClient] = []

    def make(**overrides: Any) -> SoraClient:
        options: dict[str, Any] = {"base_url": sora_sim.base_url, "api_key": sora_sim.api_key, "timeout": 5.0}
        options.update(overrides)
        sora = SoraClient(**options)
        made.append(sora)
        return sora

    yield make
    sora_sim.clear_faults()
    for sora in made:
        await sora.aclose()


@pytest.fixture(scope="session")
async def finished(sora_sim: RunningSimulator) -> Video:
    """A completed video shared by the read-only content tests of one dialect."""
    async with SoraClient(base_url=sora_sim.base_url, api_key=sora_sim.api_key, timeout=5.0) as sora:
        video = await sora.create(
            prompt="[sim:duration=1] a finished lighthouse", model="sora-2", size="1280x720", seconds=4
        )
        return await _wait_for(sora, video.id, lambda v: v.status is RemoteStatus.COMPLETED)


@pytest.fixture
def wait_for() -> Callable[[SoraClient, str, Callable[[Video], bool]], Awaitable[Video]]:
    """``await wait_for(client, video_id, predicate)``: poll until the predicate holds."""
    return _wait_for


@pytest.fixture
def png() -> Callable[[int, int], ReferenceImage]:
    """``png(width, height)``: a real PNG reference image of that size."""
    return _png


async def _wait_for(sora: SoraClient, video_id: str, done: Callable[[Video], bool]) -> Video:
    """Poll (honouring the server's hint) until ``done`` holds; fail after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        got = await sora.retrieve(video_id)
        if done(got.video):
            return got.video
        if time.monotonic() > deadline:
            pytest.fail(f"{video_id} still {got.video.raw_status} after {WAIT_SECONDS} s")
        await asyncio.sleep(min(max(got.poll_after_seconds or 0.05, 0.02), 0.2))


def _png(width: int, height: int) -> ReferenceImage:
    """A real PNG of the given size (the service checks that it matches the requested size)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(buffer, format="PNG")
    return ReferenceImage(data=buffer.getvalue(), filename="reference.png", content_type="image/png")
