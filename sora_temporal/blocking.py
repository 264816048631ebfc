"""Blocking work (disk, hashing, image decoding) kept off the event loop.

Async activities share one event loop with every other activity and with their own heartbeats:
a file read or a sha256 over a megabyte on the loop stalls them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


async def in_thread(fn: Callable[..., _T], /, *args: object, **kwargs: object) -> _T:
    """Run ``fn(*args, **kwargs)`` in a worker thread; if cancelled meanwhile, wait for it before raising.

    A thread cannot be stopped, and callers typically close the files it works on as the
    cancellation unwinds; closing a descriptor under a running thread could let it write into
    whatever file next reuses that number.
    """
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait({future})
        raise
