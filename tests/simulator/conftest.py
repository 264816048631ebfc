"""Fixtures for the simulator's own tests: one simulator per dialect per module, reset per test."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import Image
from webhook_receiver import WebhookReceiver, running_receiver

from simulator.testing import LocalSimulator, RunningSimulator, local_simulator, start_simulator

#: Fast enough that a 4 s sora-2 clip finishes in about half a second.
TIME_SCALE = 0.01


@pytest.fixture(scope="session")
def sim_media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One media cache for every simulator of the session, so each size is rendered once."""
    return tmp_path_factory.mktemp("sim-media")


@pytest.fixture(scope="module")
def openai_server(sim_media_dir: Path) -> Iterator[RunningSimulator]:
    with start_simulator(time_scale=TIME_SCALE, data_dir=sim_media_dir) as running:
        yield running


@pytest.fixture(scope="module")
def gateway_server(sim_media_dir: Path) -> Iterator[RunningSimulator]:
    with start_simulator(dialect="gateway", time_scale=TIME_SCALE, data_dir=sim_media_dir) as running:
        yield running


@pytest.fixture
def api_sim(openai_server: RunningSimulator) -> RunningSimulator:
    """The module's OpenAI-dialect simulator with no jobs, rules or counts."""
    openai_server.reset()
    return openai_server


@pytest.fixture
def gw_sim(gateway_server: RunningSimulator) -> RunningSimulator:
    """The module's gateway-dialect simulator with no jobs, rules or counts."""
    gateway_server.reset()
    return gateway_server


@pytest.fixture
def client(api_sim: RunningSimulator) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at the simulator, without retries so every fault is visible."""
    with openai.OpenAI(base_url=api_sim.base_url, api_key=api_sim.api_key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    """Encode a solid image: ``make_image(width, height, format="PNG")``."""

    def make(width: int, height: int, format: str = "PNG") -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), (90, 140, 200)).save(buffer, format=format)
        return buffer.getvalue()

    return make


@pytest.fixture
async def local_sim(sim_media_dir: Path) -> AsyncIterator[Callable[..., Awaitable[LocalSimulator]]]:
    """Start in-process simulators on a fake clock: ``sim = await local_sim(dialect=Dialect.GATEWAY)``.

    Durations are realistic (time scale 1) unless overridden; time only moves on ``sim.clock.advance``.
    """
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> LocalSimulator:
            settings = {"data_dir": sim_media_dir, **overrides}
            return await stack.enter_async_context(local_simulator(**settings))

        yield start


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A fresh webhook receiver on loopback for one test."""
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="session")
def webhook_secret() -> str:
    """A Standard Webhooks secret for the session."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def webhook_server(sim_media_dir: Path, webhook_secret: str) -> Iterator[RunningSimulator]:
    """A simulator that knows the signing secret; each test points it at its own receiver."""
    with start_simulator(time_scale=TIME_SCALE, data_dir=sim_media_dir, webhook_secret=webhook_secret) as sim:
        yield sim


@pytest.fixture
def hook_sim(webhook_server: RunningSimulator, receiver: WebhookReceiver) -> Iterator[RunningSimulator]:
    """The module's webhook simulator, reset and delivering to this test's receiver."""
    webhook_server.reset()
    webhook_server.configure_webhooks(url=receiver.url, attempts=5)
    try:
        yield webhook_server
    finally:
        # Stop deliveries in flight before the receiver goes away.
        webhook_server.configure_webhooks(url=None)
        webhook_server.reset()
