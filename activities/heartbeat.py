"""One heartbeat helper for every activity that waits on the network.

A heartbeat tells Temporal the worker is alive (a dead one is noticed at the heartbeat timeout, not
the start-to-close timeout) and delivers cancellation. The body does not beat itself: it reports
progress whenever it has some, and a background task sends the latest report at an interval derived
from the activity's heartbeat timeout, as sdk-python's contrib ``_heartbeat_decorator`` does. So
heartbeats keep flowing while a call waits for an answer (a create, a multipart upload being joined)
and never flood the server while bytes stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio import activity

DEFAULT_INTERVAL = timedelta(seconds=5)
"""Used when the activity has no heartbeat timeout (beats are then liveness and cancellation only)."""


def heartbeat_interval(heartbeat_timeout: timedelta | None) -> timedelta:
    """Half the heartbeat timeout, so one late beat never lets it expire; ``DEFAULT_INTERVAL`` without one."""
    if heartbeat_timeout is None or heartbeat_timeout <= timedelta(0):
        return DEFAULT_INTERVAL
    return heartbeat_timeout / 2


class Heartbeat:
    """The details the next heartbeat carries; the body updates them as it makes progress."""

    def __init__(self) -> None:
        self.details: tuple[Any, ...] = ()

    def report(self, *details: Any) -> None:
        """Make ``details`` (e.g. the bytes moved so far) what the next heartbeats send."""
        self.details = details


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[Heartbeat]:
    """Heartbeat now and then every :func:`heartbeat_interval` until the body ends.

    Must be entered inside an async activity. Yields the :class:`Heartbeat` whose latest details
    each beat sends; pass its ``report`` as a progress callback.
    """
    progress = Heartbeat()
    interval = heartbeat_interval(activity.info().heartbeat_timeout).total_seconds()

    async def beat() -> None:
        while True:
            activity.heartbeat(*progress.details)
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield progress
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
