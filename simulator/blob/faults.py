"""Injected trouble for API calls, set through ``/_emu/``: failures, late answers, a suspended store.

Blob URL downloads are never affected; only ``/api/blob`` calls are.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from simulator.blob.errors import ApiError

# The error code the service answers with for each injected status.
_CODES = {429: "rate_limited", 503: "service_unavailable", 500: "internal_server_error"}


@dataclass
class Fault:
    """Fail API calls with ``status``: the next ``remaining`` ones, or all while ``None``."""

    status: int
    remaining: int | None
    retry_after: float | None

    def error(self) -> ApiError:
        """The answer, with a ``Retry-After`` header when one was asked for."""
        headers = {}
        if self.retry_after is not None:
            headers["retry-after"] = str(math.ceil(self.retry_after))
        code = _CODES.get(self.status, "unknown_error")
        return ApiError(self.status, code, f"injected fault (HTTP {self.status})", headers)


@dataclass
class Delay:
    """Hold the answers to the next ``remaining`` API calls (all, while ``None``) for ``seconds``."""

    seconds: float
    remaining: int | None


@dataclass
class Faults:
    """What the test controls have set for API calls."""

    fault: Fault | None = None
    delay: Delay | None = None
    suspended: bool = False

    def fail_next(self, status: int, count: int | None, retry_after: float | None) -> None:
        """Fail the next ``count`` API calls (all, if ``None``); a count of 0 or less clears it."""
        self.fault = Fault(status=status, remaining=count, retry_after=retry_after)
        if count is not None and count <= 0:
            self.fault = None

    def delay_next(self, seconds: float, count: int | None) -> None:
        """Answer the next ``count`` API calls (all, if ``None``) ``seconds`` late."""
        self.delay = Delay(seconds=seconds, remaining=count)

    def check(self) -> None:
        """Raise the injected failure for this call, if one is due (and count it).

        Raises:
            ApiError: The injected failure.
        """
        fault = self.fault
        if fault is None:
            return
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.fault = None
        raise fault.error()

    async def hold(self) -> None:
        """Wait out the injected delay for this call, if one is due (and count it)."""
        delay = self.delay
        if delay is None:
            return
        if delay.remaining is not None:
            delay.remaining -= 1
            if delay.remaining <= 0:
                self.delay = None
        await asyncio.sleep(delay.seconds)


__all__ = ["Delay", "Fault", "Faults"]
