"""Helpers for the webhook tests: the ``api`` process that receives them, secrets, signed requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

API_KEY = "sk-webhook-tests"
STATUS_CHECK = "check_video_status"


def new_secret() -> str:
    """A fresh Standard Webhooks secret, ``whsec_<base64>``."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header a sender holding ``secret`` would send."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event(video_id: str, *, kind: str = "video.completed", event_id: str | None = None) -> bytes:
    """A thin event body, as the Videos API sends it."""
    payload = {
        "id": event_id or f"evt_{secrets.token_hex(8)}",
        "object": "event",
        "created_at": int(time.time()),
        "type": kind,
        "data": {"id": video_id},
    }
    return json.dumps(payload).encode()


def signed_headers(
    secret: str, body: bytes, *, age: int = 0, webhook_id: str | None = None
) -> dict[str, str]:
    """Headers of a delivery signed with ``secret``, its timestamp ``age`` seconds old."""
    webhook_id = webhook_id or f"wh_{secrets.token_hex(8)}"
    timestamp = int(time.time()) - age
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def receiver_env(worker_env: dict[str, str], secret: str, **extra: str) -> dict[str, str]:
    """The worker's settings plus the receiver's: the webhook secret and an API key."""
    return {**worker_env, "API_KEYS": API_KEY, "OPENAI_WEBHOOK_SECRET": secret, **extra}


@dataclass(frozen=True)
class Trace:
    """What one workflow's history says about its poll loop (all its runs)."""

    signals: int
    checks: int
    first_signal: int | None
    first_check: int | None


async def trace(handle: WorkflowHandle[Any, Any]) -> Trace:
    """Count the ``remote_event`` signals and the status checks in a workflow's history."""
    signals = checks = 0
    first_signal = first_check = None
    position = 0
    async for e in handle.fetch_history_events():
        position += 1
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            if e.workflow_execution_signaled_event_attributes.signal_name == "remote_event":
                signals += 1
                first_signal = first_signal or position
        elif (
            e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and STATUS_CHECK.encode() in e.marker_recorded_event_attributes.SerializeToString()
        ) or (
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == STATUS_CHECK
        ):
            checks += 1
            first_check = first_check or position
    return Trace(signals, checks, first_signal, first_check)
