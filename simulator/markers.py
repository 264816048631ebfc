"""Prompt markers (``[sim:...]``) that steer a single job."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARKER = re.compile(r"\[sim:([^\]]*)\]")

DEFAULT_FAILURE_CODE = "internal_error"


@dataclass(frozen=True)
class PromptMarkers:
    """What the markers in one prompt ask for.

    Attributes:
        fail_code: The job ends ``failed`` with this error code (None = it does not fail).
        never: The job never finishes.
        expire: The job's content is already expired when it completes.
        duration: Exact realistic duration (seconds, before time-scale) until the job ends.
    """

    fail_code: str | None = None
    never: bool = False
    expire: bool = False
    duration: float | None = None


def parse_markers(prompt: str) -> PromptMarkers:
    """Read the ``[sim:...]`` markers in a prompt; unknown markers are ignored.

    Args:
        prompt: The job's prompt.

    Returns:
        The combined markers.
    """
    fail_code: str | None = None
    never = expire = False
    duration: float | None = None
    for raw in _MARKER.findall(prompt):
        token = raw.strip()
        if token == "fail":
            fail_code = DEFAULT_FAILURE_CODE
        elif token.startswith("fail:"):
            fail_code = token.removeprefix("fail:").strip() or DEFAULT_FAILURE_CODE
        elif token == "never":
            never = True
        elif token == "expire":
            expire = True
        elif token.startswith("duration="):
            try:
                value = float(token.removeprefix("duration="))
            except ValueError:
                continue
            if value >= 0:
                duration = value
    return PromptMarkers(fail_code=fail_code, never=never, expire=expire, duration=duration)
