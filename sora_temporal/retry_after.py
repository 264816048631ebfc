"""``Retry-After`` parsing, shared by every HTTP client in the project (Sora, Vercel Blob)."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``Retry-After`` seconds or ``Retry-After`` HTTP-date.

    Args:
        headers: Response headers; lookups must be case-insensitive (``httpx.Headers`` is).

    Returns:
        A non-negative finite number of seconds, or ``None`` if no usable header was sent.
    """
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw.strip()) / divisor
        except ValueError:
            continue
        if math.isfinite(value):
            return max(0.0, value)
    raw = headers.get("retry-after")
    if raw and raw.strip():
        try:
            parsed = email.utils.parsedate_tz(raw.strip())
            if parsed is not None:
                return max(0.0, float(email.utils.mktime_tz(parsed)) - time.time())
        except (TypeError, ValueError, OverflowError):
            return None
    return None
