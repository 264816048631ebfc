"""``POST /webhooks/openai``: the Videos API's signed events wake the workflow they are about.

The provider sends ``video.completed`` / ``video.failed`` with a thin payload
(``{"id": "evt_…", "type": …, "data": {"id": "video_…"}}``), signed per Standard Webhooks
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; secret ``OPENAI_WEBHOOK_SECRET``).
Deliveries are at least once, sometimes late, sometimes never:

- a bad or missing signature, or a timestamp more than 5 minutes off, is refused (400): nothing is
  signalled, and the log names the reason and the delivery, never the body;
- a verified event finds its workflow (the catalogue row holding the video id, else the
  ``SoraVideoId`` search attribute) and sends it the ``remote_event`` signal. The workflow then
  checks the job's status itself; it never acts on the event's content, and remembers event ids,
  so a duplicate acts once (this process also skips ids it signalled recently);
- an event about a video nobody here knows, or a workflow that has already ended, is acknowledged
  (200), so the provider stops retrying; Temporal not answering is a 503, so it retries later.

Polling remains the safety net: a workflow told that webhooks are configured still checks every
``WEBHOOK_FALLBACK_POLL_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.services import services
from sora_temporal.db import VideoCatalog
from sora_temporal.search_attributes import SORA_VIDEO_ID
from sora_temporal.types import RemoteEvent
from workflows.video import VideoGenerationWorkflow

log = logging.getLogger(__name__)

router = APIRouter()

#: Events are a few hundred bytes; anything much larger is not one.
MAX_BODY_BYTES = 64 * 1024
#: Event ids this process signalled lately (the workflows remember theirs for good).
RECENT_EVENTS = 4096
SIGNAL_TIMEOUT = timedelta(seconds=10)
# Ids that are safe to put into a visibility query as they are; others are only looked up in the catalogue.
_QUERYABLE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,255}")


@dataclass(frozen=True)
class Outcome:
    """What became of one verified event (for the answer and the log)."""

    event_id: str
    video_id: str | None
    workflow_id: str | None
    result: str


class WebhookReceiver:
    """Verifies events and signals their workflows; one per app.

    Args:
        secret: The ``whsec_…`` signing secret; ``None`` when webhooks are not configured.
        client: A connected Temporal client.
        catalog: The ``videos`` table, to find the workflow holding a video id.
    """

    def __init__(self, secret: str | None, client: Client, catalog: VideoCatalog) -> None:
        self._verifier: Webhook | None = None
        if secret:
            try:
                self._verifier = Webhook(secret)
            except Exception:
                # Never echo the value: it is the secret.
                log.error("OPENAI_WEBHOOK_SECRET is not a whsec_<base64> secret; webhooks are refused")
        self.client = client
        self.catalog = catalog
        self._recent: OrderedDict[str, None] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether a usable secret is configured."""
        return self._verifier is not None

    def verify(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """The event's payload, once its signature and timestamp check out.

        Raises:
            ApiError: 400, with the reason (never the body); 503 without a usable secret.
        """
        if self._verifier is None:
            raise ApiError(503, "Webhooks are not configured here.", code="webhooks_not_configured")
        try:
            self._verifier.verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError) as err:
            # ValueError covers what the library lets through: a body that is not UTF-8, a
            # signature that is not base64 or lacks its "v1," prefix.
            reason = str(err) if isinstance(err, WebhookVerificationError) else "Malformed signature or body"
            raise ApiError(400, f"Webhook refused: {reason}.", code="invalid_webhook_signature") from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise ApiError(400, "Webhook refused: the body is not JSON.", code="invalid_webhook") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "Webhook refused: the body is not a JSON object.", code="invalid_webhook")
        return payload

    async def deliver(self, payload: dict[str, Any], webhook_id: str) -> Outcome:
        """Signal the workflow of a verified event's video.

        Raises:
            ApiError: 400 for an event without a video id; 503 when Temporal does not answer.
        """
        event_id = payload.get("id") if isinstance(payload.get("id"), str) else None
        event_id = (event_id or webhook_id)[:255]
        raw_kind = payload.get("type")
        kind = raw_kind if isinstance(raw_kind, str) else ""
        data = payload.get("data")
        video_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(video_id, str) or not video_id:
            raise ApiError(
                400, "Webhook refused: the event names no video (data.id).", code="invalid_webhook"
            )
        if not kind.startswith("video."):
            return Outcome(event_id, video_id, None, "ignored: not a video event")
        if event_id in self._recent:
            return Outcome(event_id, video_id, None, "duplicate: already signalled")
        workflow_id = await self._find(video_id)
        if workflow_id is None:
            self._remember(event_id)
            return Outcome(event_id, video_id, None, "acknowledged: unknown video")
        try:
            await self.client.get_workflow_handle(workflow_id).signal(
                VideoGenerationWorkflow.remote_event,
                RemoteEvent(event_id=event_id, event_type=kind[:64]),
                rpc_timeout=SIGNAL_TIMEOUT,
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                # The workflow has ended (or was never started): nothing is waiting for this event.
                self._remember(event_id)
                return Outcome(event_id, video_id, workflow_id, "acknowledged: workflow not running")
            log.warning(
                "webhook %s: Temporal did not take the signal for %s: %s", event_id, workflow_id, err.status
            )
            raise ApiError(503, "Temporal is not answering; deliver again later.") from None
        self._remember(event_id)
        return Outcome(event_id, video_id, workflow_id, "signalled")

    async def _find(self, video_id: str) -> str | None:
        found = await run_in_threadpool(self.catalog.workflow_of, video_id)
        if found is not None or not _QUERYABLE_ID.fullmatch(video_id):
            return found
        # The row may not hold the id yet (or lives in another database): ask Temporal's visibility.
        query = f'{SORA_VIDEO_ID.name} = "{video_id}"'
        try:
            async for execution in self.client.list_workflows(query, limit=1, rpc_timeout=SIGNAL_TIMEOUT):
                return execution.id
        except RPCError as err:
            # No search attributes in this namespace, or visibility not answering: nothing to find.
            log.debug("visibility lookup of %s failed: %s", video_id, err.status)
        return None

    def _remember(self, event_id: str) -> None:
        self._recent[event_id] = None
        self._recent.move_to_end(event_id)
        while len(self._recent) > RECENT_EVENTS:
            self._recent.popitem(last=False)


def receiver(request: Request) -> WebhookReceiver:
    """The app's receiver, built from its services on first use."""
    found: WebhookReceiver | None = getattr(request.app.state, "webhook_receiver", None)
    if found is None:
        svc = services(request)
        found = WebhookReceiver(svc.settings.webhooks.secret, svc.jobs.client, VideoCatalog(svc.store.engine))
        request.app.state.webhook_receiver = found
    return found


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"A webhook body is at most {MAX_BODY_BYTES} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"A webhook body is at most {MAX_BODY_BYTES} bytes.")
    return bytes(body)


def _shown(value: str | None) -> str:
    """An untrusted header value, safe for one log line."""
    return repr((value or "")[:80])


@router.post("/webhooks/openai", include_in_schema=False)
async def openai_webhook(request: Request) -> JSONResponse:
    """Receive one event: verify it, then wake the workflow it is about."""
    hook = receiver(request)
    webhook_id = request.headers.get("webhook-id")
    try:
        body = await _read_body(request)
        payload = hook.verify(body, dict(request.headers))
    except ApiError as err:
        log.warning("webhook %s refused (%d): %s", _shown(webhook_id), err.status, err)
        raise
    outcome = await hook.deliver(payload, webhook_id or "")
    log.info(
        "webhook %s (%s) for %s: %s%s",
        _shown(outcome.event_id),
        _shown(payload.get("type") if isinstance(payload.get("type"), str) else None),
        _shown(outcome.video_id),
        outcome.result,
        f" ({outcome.workflow_id})" if outcome.workflow_id else "",
    )
    return JSONResponse({"received": True, "result": outcome.result})
