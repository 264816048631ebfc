"""The heartbeat helper: beats at half the heartbeat timeout, with the latest progress, while the body waits."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.heartbeat import DEFAULT_INTERVAL, heartbeat_interval, heartbeating


def test_the_interval_is_half_the_heartbeat_timeout() -> None:
    assert heartbeat_interval(timedelta(seconds=20)) == timedelta(seconds=10)


def test_without_a_heartbeat_timeout_the_default_interval_is_used() -> None:
    assert heartbeat_interval(None) == DEFAULT_INTERVAL


def _environment(heartbeat_timeout: timedelta, seen: list[tuple[Any, ...]]) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=heartbeat_timeout)
    env.on_heartbeat = lambda *details: seen.append(details)
    return env


async def _until(condition: Any) -> None:
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


async def test_heartbeats_repeat_the_latest_progress_while_the_body_waits() -> None:
    seen: list[tuple[Any, ...]] = []

    async def activity() -> None:
        async with heartbeating() as progress:
            progress.report(1000)
            # Nothing more arrives (e.g. the store joins the parts): the figure keeps being sent.
            await _until(lambda: seen.count((1000,)) >= 3)

    await _environment(timedelta(milliseconds=20), seen).run(activity)

    assert seen.count((1000,)) >= 3


async def test_heartbeats_stop_when_the_body_ends() -> None:
    seen: list[tuple[Any, ...]] = []

    async def activity() -> int:
        async with heartbeating():
            await _until(lambda: len(seen) >= 1)
        return len(seen)

    beats_at_exit = await _environment(timedelta(milliseconds=20), seen).run(activity)
    await asyncio.sleep(0.1)

    assert len(seen) == beats_at_exit
