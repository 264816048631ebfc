"""NotifyApplicationWorkflow: one webhook to the application, delivered however long it takes.

    notify_application ─▶ 2xx: done
            ▲         └─▶ refused / unreachable: wait (backoff, or the receiver's Retry-After) ─┐
            └────────────────────────────────────────────────────────────────────────────────────┘
                        410 Gone, or 72 hours without a 2xx: the workflow fails, visibly

Started by a finished ``VideoGenerationWorkflow`` as an abandoned child, so the job's own workflow
closes as the job ended while delivery goes on; both survive worker and server restarts. Delivery
is at least once, the same ``webhook-id`` every attempt, as the Videos API's own webhooks.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.video import VideoActivities
    from sora_temporal.types import ApplicationEvent

NOTIFY_START_TO_CLOSE = timedelta(seconds=30)
"""One attempt: the HTTP client's own limit is 15 s."""
NOTIFY_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=5), backoff_coefficient=2.0, maximum_interval=timedelta(hours=1)
)
"""5 s, 10 s, 20 s, … then hourly; a receiver's ``Retry-After`` (up to 10 minutes) comes first."""
DELIVERY_WINDOW = timedelta(hours=72)
"""How long an event is retried: as long as the Videos API retries its own."""


@workflow.defn
class NotifyApplicationWorkflow:
    """Deliver one :class:`ApplicationEvent` to the application's webhook endpoint."""

    @workflow.run
    async def run(self, event: ApplicationEvent) -> None:
        await workflow.execute_activity_method(
            VideoActivities.notify,
            event,
            summary=f"{event.type.value} {event.video_id}",
            start_to_close_timeout=NOTIFY_START_TO_CLOSE,
            schedule_to_close_timeout=DELIVERY_WINDOW,
            retry_policy=NOTIFY_RETRY_POLICY,
        )
