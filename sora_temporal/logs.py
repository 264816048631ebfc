"""The worker's logging: plain text, or one JSON object per line (``LOG_FORMAT=json``).

Every record made while an activity runs carries the job's ``workflow_id`` (and ``run_id``,
``activity``, ``attempt``), from the activity's own context or from the ``temporal_workflow`` /
``temporal_activity`` details Temporal's loggers attach; ``video_id`` is set by
:func:`video_context` (or ``extra={"video_id": ...}``) where the Sora job id is known. No field is
taken from settings or the environment, so no secret can reach a log line through this module.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

_VIDEO_ID: ContextVar[str | None] = ContextVar("sora_video_id", default=None)
CONTEXT_FIELDS = ("workflow_id", "run_id", "activity", "attempt", "video_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def video_context(video_id: str | None) -> Iterator[None]:
    """Records made inside carry ``video_id`` (the Sora job the current activity works on)."""
    token = _VIDEO_ID.set(video_id)
    try:
        yield
    finally:
        _VIDEO_ID.reset(token)


class JobContext(logging.Filter):
    """Adds the ``CONTEXT_FIELDS`` a record can know (``None`` where unknown); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        found: dict[str, Any] = {}
        details = getattr(record, "temporal_workflow", None)
        if isinstance(details, dict):
            found |= {"workflow_id": details.get("workflow_id"), "run_id": details.get("run_id")}
        details = getattr(record, "temporal_activity", None)
        if isinstance(details, dict):
            found |= {
                "workflow_id": details.get("workflow_id"),
                "run_id": details.get("workflow_run_id"),
                "activity": details.get("activity_type"),
                "attempt": details.get("attempt"),
            }
        if "workflow_id" not in found and activity.in_activity():
            info = activity.info()
            found |= {
                "workflow_id": info.workflow_id,
                "run_id": info.workflow_run_id,
                "activity": info.activity_type,
                "attempt": info.attempt,
            }
        found.setdefault("video_id", _VIDEO_ID.get())
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, found.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """Send every log record to stderr as ``fmt`` (``text`` or ``json``) at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobContext())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings too, in the same format
    # httpx logs every request URL at INFO; quieter by default.
    logging.getLogger("httpx").setLevel(logging.WARNING)
