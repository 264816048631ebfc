"""Prompt markers (``[sim:...]``) that steer a single job.

Lifecycle: ``[sim:fail]``, ``[sim:fail:CODE]``, ``[sim:never]``, ``[sim:expire]``,
``[sim:duration=SECONDS]``. Hostile answers about this job wherever it appears:
``[sim:id=KIND]`` (its id is hostile: ``dot``, ``dotdot``, ``long``, ``slash``, ``query``,
``space``, ``unicode``, or ``raw:<literal>``), ``[sim:junk]``/``[sim:junk=overflow|garbage]``
(numeric fields are junk in status and list answers), ``[sim:omit]``/``[sim:omit=f1,f2]`` (list
entries leave fields out, as gateways do), ``[sim:error=long|nul]`` (the job fails with an error
code and message a database column cannot take).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simulator import hostile

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
        id_kind: The job gets a hostile id of this kind (see ``hostile.hostile_id``).
        junk: Its numeric fields are junk of this kind in status and list answers.
        omit: Fields its list entries leave out.
        error_kind: It fails with a poisoned error of this kind (see ``hostile.poisoned_error``).
    """

    fail_code: str | None = None
    never: bool = False
    expire: bool = False
    duration: float | None = None
    id_kind: str | None = None
    junk: str | None = None
    omit: tuple[str, ...] = ()
    error_kind: str | None = None


def parse_markers(prompt: str) -> PromptMarkers:
    """Read the ``[sim:...]`` markers in a prompt; unknown or malformed markers are ignored.

    Args:
        prompt: The job's prompt.

    Returns:
        The combined markers.
    """
    fail_code: str | None = None
    never = expire = False
    duration: float | None = None
    id_kind: str | None = None
    junk: str | None = None
    omit: tuple[str, ...] = ()
    error_kind: str | None = None
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
        elif token.startswith("id="):
            # Not stripped: a raw id may end in a space on purpose.
            kind = raw.lstrip().removeprefix("id=")
            try:
                hostile.check_id_kind(kind)
            except ValueError:
                continue
            id_kind = kind
        elif token == "junk" or token.startswith("junk="):
            kind = token.removeprefix("junk").removeprefix("=") or "overflow"
            if kind in hostile.JUNK_KINDS:
                junk = kind
        elif token == "omit":
            omit = hostile.DEFAULT_OMITTED
        elif token.startswith("omit="):
            names = tuple(name.strip() for name in token.removeprefix("omit=").split(",") if name.strip())
            if names and set(names) <= set(hostile.OMITTABLE):
                omit = names
        elif token.startswith("error="):
            kind = token.removeprefix("error=")
            if kind in hostile.ERROR_KINDS:
                error_kind = kind
    return PromptMarkers(
        fail_code=fail_code,
        never=never,
        expire=expire,
        duration=duration,
        id_kind=id_kind,
        junk=junk,
        omit=omit,
        error_kind=error_kind,
    )
