"""Webhooks to the application: a job started through the API ended (``video.completed`` / ``video.failed``).

The events are the Videos API's own, thin ones (``{"id": "evt_…", "object": "event", "created_at":
…, "type": "video.completed", "data": {"id": "video_…"}}``), signed per Standard Webhooks, so an
application that verifies OpenAI's webhooks (``client.webhooks.unwrap``/``verify_signature`` in the
official SDKs, or the ``standardwebhooks`` package) verifies ours with our secret. The workflow
decides *that* an event is sent and its id; this module signs and sends one delivery attempt, and
Temporal retries it (``workflows.notify``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from sora_temporal.errors import WebhookRefused
from sora_temporal.retry_after import parse_retry_after
from sora_temporal.types import ApplicationEvent

# One attempt: connect, send, read the status line. A receiver is expected to answer at once and
# do its work afterwards (every webhook provider says so); a slow one is retried.
DELIVERY_TIMEOUT_SECONDS = 15.0
USER_AGENT = "sora-temporal-webhooks/1"


def event_id(workflow_id: str, event_type: str) -> str:
    """The event's id: derived from the job and the event, so every attempt (and replay) sends the same one."""
    digest = hashlib.sha256(f"{workflow_id}\n{event_type}".encode()).hexdigest()[:32]
    return f"evt_{digest}"


def event_body(event: ApplicationEvent) -> bytes:
    """The JSON body of ``event``, in the Videos API's webhook shape."""
    payload = {
        "id": event.event_id,
        "object": "event",
        "created_at": event.created_at,
        "type": event.type.value,
        "data": {"id": event.video_id},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


class Notifier:
    """Signs and POSTs events to the application's endpoint.

    Args:
        url: The endpoint (``OUTBOUND_WEBHOOK_URL``).
        secret: The ``whsec_…`` signing secret (``OUTBOUND_WEBHOOK_SECRET``).
        client: The HTTP client to send with (no retries, no redirects followed); one of its own
            when ``None``.
    """

    def __init__(self, url: str, secret: str, *, client: httpx.AsyncClient | None = None) -> None:
        self._url = url
        self._signer = Webhook(secret)
        self._client = client or httpx.AsyncClient(
            timeout=DELIVERY_TIMEOUT_SECONDS,
            follow_redirects=False,
            transport=httpx.AsyncHTTPTransport(retries=0),
        )

    async def send(self, event: ApplicationEvent) -> int:
        """Deliver ``event`` once; returns the receiver's 2xx status.

        The timestamp (and so the signature) is made per attempt: receivers refuse timestamps older
        than five minutes, and a retry may come hours later.

        Raises:
            WebhookRefused: The receiver answered anything but 2xx (a redirect is not followed).
            httpx.HTTPError: It could not be reached or did not answer in time.
        """
        body = event_body(event)
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(event.event_id, now, body.decode()),
        }
        # Streamed and closed unread: the receiver's body is of no use and of any size.
        async with self._client.stream("POST", self._url, content=body, headers=headers) as response:
            if 200 <= response.status_code < 300:
                return response.status_code
            raise WebhookRefused(response.status_code, parse_retry_after(response.headers))

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
