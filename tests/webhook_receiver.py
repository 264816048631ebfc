"""A loopback webhook receiver (the application's endpoint in tests): records every POST, answers as told."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Delivery:
    """One webhook request as the receiver got it."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class WebhookReceiver:
    """A loopback HTTP endpoint, on its own thread, that records every POST and answers as told.

    Attributes:
        url: Where it listens (``http://127.0.0.1:PORT/webhooks``).
    """

    def __init__(self) -> None:
        self.url = ""
        self._deliveries: list[Delivery] = []
        self._answers: list[tuple[int, dict[str, str]]] = []
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def answer(self, *statuses: int, retry_after: float | None = None) -> None:
        """Answer the next requests with these statuses (then 200 again), with a ``Retry-After`` if given."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        with self._changed:
            self._answers.extend((status, headers) for status in statuses)

    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return list(self._deliveries)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        """Block until at least ``count`` requests arrived; fail the test otherwise."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self._deliveries) >= count, timeout)
            assert arrived, f"expected {count} webhook deliveries, got {len(self._deliveries)}"
            return list(self._deliveries)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10), "webhook receiver did not start"

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._changed:
            status, headers = self._answers.pop(0) if self._answers else (200, {})
            self._deliveries.append(Delivery(dict(request.headers), body, status))
            self._changed.notify_all()
        return web.Response(status=status, headers=headers)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/webhooks", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/webhooks"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()


@contextmanager
def running_receiver() -> Iterator[WebhookReceiver]:
    """A started :class:`WebhookReceiver`, stopped afterwards."""
    running = WebhookReceiver()
    running.start()
    try:
        yield running
    finally:
        running.stop()
