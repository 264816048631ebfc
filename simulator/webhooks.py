"""Outbound webhooks: signed ``video.completed`` / ``video.failed`` events, delivered at least once.

Events follow the Videos protocol's thin payload ``{"id": "evt_…", "object": "event", "created_at":
…, "type": …, "data": {"id": "video_…"}}`` and Standard Webhooks signing: headers ``webhook-id``
(stable across retries and duplicates), ``webhook-timestamp`` (Unix seconds of the attempt) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed by the
base64 part of a ``whsec_…`` secret).

A job's event is made when the job ends (naturally or forced through ``/_sim/jobs``) while a
webhook URL is configured. A delivery succeeds on any 2xx answer; anything else (another status,
a refused connection, a 10 s timeout) is retried after 5, 20, 80, 320 ... realistic seconds (times
the time scale, capped at one hour), up to the configured number of attempts. Redirects are not
followed. Rules on route ``webhook`` (see ``faults``) bend delivery per event.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp import web

from simulator.config import MAX_WEBHOOK_ATTEMPTS, SimConfig, check_webhook_settings, webhook_key
from simulator.faults import FaultAction, FaultBook, FaultRule, Route, Target
from simulator.lifecycle import JobStatus
from simulator.state import Job

log = logging.getLogger("simulator.webhooks")

#: How stale an ``expired`` rule makes the timestamp (receivers accept 300 s).
EXPIRED_AGE_S = 600
#: Per-attempt time limit; wall-clock seconds, not scaled (it is about the receiver, not the render).
ATTEMPT_TIMEOUT_S = 10.0
FIRST_RETRY_S = 5.0
BACKOFF_FACTOR = 4.0
MAX_RETRY_S = 3600.0
#: Due jobs are re-checked at least this often, so a fake clock's jumps are noticed too.
_MAX_WAIT_S = 0.25
_USER_AGENT = "sora-simulator-webhooks/1.0"


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery.

    Args:
        secret: ``whsec_<base64>``.
        webhook_id: The ``webhook-id`` header.
        timestamp: The ``webhook-timestamp`` header.
        body: The exact request body.
    """
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_delay(attempt: int) -> float:
    """Realistic seconds to wait before attempt number ``attempt`` (2 or more)."""
    return float(min(MAX_RETRY_S, FIRST_RETRY_S * BACKOFF_FACTOR ** (attempt - 2)))


class EventState(StrEnum):
    """Where an event's delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DROPPED = "dropped"


@dataclass
class WebhookEvent:
    """One event and what became of its delivery.

    Attributes:
        id: ``evt_…`` (in the payload).
        webhook_id: ``webhook-id`` header, the same on every attempt and copy.
        type: ``video.completed`` or ``video.failed``.
        video_id: The job it is about.
        created_at: Event time (simulator clock).
        body: The exact bytes sent.
        fault: The webhook rule applied to it, if any.
        state: Delivery state.
        attempts: HTTP attempts made (all copies).
        deliveries: Attempts answered with a 2xx.
        responses: Per attempt: the HTTP status, or the connection error's name.
    """

    id: str
    webhook_id: str
    type: str
    video_id: str
    created_at: int
    body: bytes
    fault: str | None = None
    state: EventState = EventState.PENDING
    attempts: int = 0
    deliveries: int = 0
    responses: list[int | str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The control-plane view used by ``/_sim/webhooks``."""
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "type": self.type,
            "video_id": self.video_id,
            "created_at": self.created_at,
            "fault": self.fault,
            "state": self.state.value,
            "attempts": self.attempts,
            "deliveries": self.deliveries,
            "responses": list(self.responses),
        }


class WebhookDispatcher:
    """Watches jobs, makes an event when one ends, and delivers it.

    Args:
        config: Initial endpoint, secret and attempts; also the time scale of retries.
        clock: The simulator's clock.
        faults: The rule book (rules on route ``webhook`` apply here).
    """

    def __init__(self, config: SimConfig, clock: Callable[[], float], faults: FaultBook) -> None:
        self.config = config
        self.clock = clock
        self.faults = faults
        self.url = config.webhook_url
        self.secret = config.webhook_secret
        self.attempts = config.webhook_attempts
        self.events: list[WebhookEvent] = []
        self.attempted = 0
        self.delivered = 0
        self._watched: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        # A forger's key: well-formed signatures that verify against nothing.
        self._forged_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

    # ----- configuration ------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether events are being made and sent."""
        return self.url is not None and self.secret is not None

    def configure(self, changes: dict[str, Any]) -> None:
        """Apply ``{"url"?, "secret"?, "attempts"?}``; a null ``url`` turns webhooks off.

        Raises:
            ValueError: On an unknown field or an invalid setting.
        """
        unknown = set(changes) - {"url", "secret", "attempts"}
        if unknown:
            raise ValueError(f"unknown webhook settings: {sorted(unknown)}")
        url = changes.get("url", self.url)
        secret = changes.get("secret", self.secret)
        attempts = changes.get("attempts", self.attempts)
        if url is not None and not isinstance(url, str):
            raise ValueError("'url' must be a string or null")
        if secret is not None and not isinstance(secret, str):
            raise ValueError("'secret' must be a string or null")
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise ValueError(f"'attempts' must be a whole number from 1 to {MAX_WEBHOOK_ATTEMPTS}")
        check_webhook_settings(url, secret, attempts)
        # Jobs that already ended are announced (or not) under the settings they ended with.
        self.check_now()
        self.url, self.secret, self.attempts = url, secret, attempts
        self.poke()

    def describe(self) -> dict[str, Any]:
        """Settings (never the secret), counters and every event so far."""
        return {
            "url": self.url,
            "secret_set": self.secret is not None,
            "attempts": self.attempts,
            "stats": self.stats(),
            "events": [event.to_json() for event in self.events],
        }

    def stats(self) -> dict[str, int]:
        """Counts: events made, attempts, 2xx deliveries, and events pending, failed or dropped."""
        states = [event.state for event in self.events]
        return {
            "events": len(self.events),
            "attempted": self.attempted,
            "delivered": self.delivered,
            "pending": states.count(EventState.PENDING),
            "failed": states.count(EventState.FAILED),
            "dropped": states.count(EventState.DROPPED),
        }

    # ----- jobs ---------------------------------------------------------------------------------

    def watch(self, job: Job) -> None:
        """Make an event when ``job`` ends."""
        self._watched[job.id] = job
        self.poke()

    def poke(self) -> None:
        """Have the watcher re-check the watched jobs soon (settings changed)."""
        self._wake.set()

    def check_now(self) -> None:
        """Make the events of jobs that have ended, before answering (a job was just forced)."""
        self._fire_due()
        self.poke()

    def early_lead(self, job: Job) -> float:
        """Seconds an ``early`` rule wants this job's event to precede its final status (0 if none)."""
        if not self.enabled:
            return 0.0
        rule = self.faults.peek(Target(Route.WEBHOOK, prompt=job.spec.prompt))
        return rule.lead if rule is not None and rule.action is FaultAction.EARLY else 0.0

    def reset(self) -> None:
        """Forget watched jobs, events and counters and stop deliveries in flight (settings stay)."""
        for task in self._tasks:
            task.cancel()
        self._watched.clear()
        self.events.clear()
        self.attempted = self.delivered = 0

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: watch and deliver while the application runs."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_S), headers={"User-Agent": _USER_AGENT}
        )
        watcher = asyncio.create_task(self._watch())
        try:
            yield
        finally:
            watcher.cancel()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(watcher, *self._tasks, return_exceptions=True)
            await self._session.close()
            self._session = None

    async def _watch(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait = self._fire_due()
            except Exception:
                log.exception("webhook watcher failed; retrying")
                wait = _MAX_WAIT_S
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass

    def _fire_due(self) -> float | None:
        """Make events for jobs that are due; returns how long to sleep (None: until poked)."""
        now = self.clock()
        next_due: float | None = None
        for job in list(self._watched.values()):
            ends = job.plan.ends_at
            if ends is None:
                continue
            due = ends - self.early_lead(job)
            if now >= due:
                del self._watched[job.id]
                if self.enabled and not job.deleted:
                    self._fire(job, now)
            else:
                next_due = due if next_due is None else min(next_due, due)
        if next_due is None:
            return None
        return min(max(next_due - now, 0.0), _MAX_WAIT_S)

    def _fire(self, job: Job, now: float) -> None:
        rule = self.faults.take(Target(Route.WEBHOOK, prompt=job.spec.prompt))
        kind = "video.completed" if job.plan.outcome is JobStatus.COMPLETED else "video.failed"
        payload = {
            "id": f"evt_{secrets.token_hex(16)}",
            "object": "event",
            "created_at": int(now),
            "type": kind,
            "data": {"id": job.id},
        }
        event = WebhookEvent(
            id=str(payload["id"]),
            webhook_id=f"wh_{secrets.token_hex(16)}",
            type=kind,
            video_id=job.id,
            created_at=int(now),
            body=json.dumps(payload, separators=(",", ":")).encode(),
            fault=rule.action.value if rule is not None else None,
        )
        self.events.append(event)
        action = rule.action if rule is not None else None
        if action is FaultAction.DROP:
            event.state = EventState.DROPPED
            log.info("webhook %s for %s dropped by a fault rule", event.id, job.id)
            return
        start = 0.0
        ends = job.plan.ends_at
        if action is not FaultAction.EARLY and ends is not None and ends > now:
            # Only an ``early`` rule may announce an end the status does not show yet.
            start = ends - now
        if rule is not None and action is FaultAction.DELAY:
            start += rule.delay
        task = asyncio.create_task(self._deliver(event, rule, start))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: WebhookEvent, rule: FaultRule | None, start: float) -> None:
        if start > 0:
            await asyncio.sleep(start)
        copies = rule.times if rule is not None and rule.action is FaultAction.DUPLICATE else 1
        spacing = rule.spacing if rule is not None and rule.action is FaultAction.DUPLICATE else 0.0
        async with asyncio.TaskGroup() as group:
            for copy in range(copies):
                if copy and spacing > 0:
                    await asyncio.sleep(spacing)
                group.create_task(self._attempt_series(event, rule))
        event.state = EventState.DELIVERED if event.deliveries else EventState.FAILED

    async def _attempt_series(self, event: WebhookEvent, rule: FaultRule | None) -> None:
        attempt = 1
        while not await self._attempt(event, rule):
            attempt += 1
            if attempt > self.attempts:
                log.info(
                    "webhook %s for %s given up after %d attempts", event.id, event.video_id, attempt - 1
                )
                return
            await asyncio.sleep(self.config.scaled(retry_delay(attempt)))

    async def _attempt(self, event: WebhookEvent, rule: FaultRule | None) -> bool:
        url, secret, session = self.url, self.secret, self._session
        if url is None or secret is None or session is None:
            event.responses.append("no endpoint")
            return False
        action = rule.action if rule is not None else None
        timestamp = int(time.time()) - (EXPIRED_AGE_S if action is FaultAction.EXPIRED else 0)
        key = self._forged_secret if action is FaultAction.BAD_SIGNATURE else secret
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, event.webhook_id, timestamp, event.body),
        }
        self.attempted += 1
        event.attempts += 1
        try:
            async with session.post(url, data=event.body, headers=headers, allow_redirects=False) as answer:
                status = answer.status
                # Read (a bounded amount) so the connection can be reused.
                await answer.content.read(64 * 1024)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            event.responses.append(type(exc).__name__)
            log.info("webhook %s attempt %d: %s", event.id, event.attempts, type(exc).__name__)
            return False
        event.responses.append(status)
        log.info("webhook %s attempt %d: HTTP %d", event.id, event.attempts, status)
        if 200 <= status < 300:
            event.deliveries += 1
            self.delivered += 1
            return True
        return False
