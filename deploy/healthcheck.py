"""Readiness check for a worker container: is *this* worker process polling its task queue?

Compose runs it as the worker service's healthcheck (``python deploy/healthcheck.py``), with the
worker's environment. It asks Temporal which workers poll the shared task queue and looks for the
worker process by the identity the Temporal SDK gives it by default (``<pid>@<hostname>``; the worker
is PID 1 in its container), polling since that process started. A stale poller left by a process
that ran before a container restart does not count.

Exit status 0: ready. 1: not ready (the reason goes to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from sora_temporal.settings import Settings

_QUEUE_TYPES = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


def process_started_at(pid: int) -> datetime | None:
    """When process ``pid`` started, from ``/proc`` (``None`` where there is no ``/proc``).

    Args:
        pid: The process id.

    Returns:
        The start time (UTC, to within a second), or ``None``.
    """
    try:
        # Field 22 of /proc/PID/stat counts clock ticks since boot; the command name (field 2) may
        # contain spaces, so split after its closing parenthesis.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)


async def unready_reasons(settings: Settings, identity: str, since: datetime | None) -> list[str]:
    """Why the worker with ``identity`` is not ready (an empty list when it is).

    Args:
        settings: Where Temporal is and which task queue the worker serves.
        identity: The worker's Temporal identity.
        since: Polls before this time belong to an earlier process and do not count.

    Returns:
        One line per task queue type the worker does not poll.
    """
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    reasons = []
    for name, queue_type in _QUEUE_TYPES.items():
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=queue_type,
            )
        )
        polling = [
            poller
            for poller in response.pollers
            if poller.identity == identity
            and (since is None or poller.last_access_time.ToDatetime(UTC) >= since)
        ]
        if not polling:
            reasons.append(f"{identity} does not poll {name} tasks on task queue {settings.task_queue!r}")
    return reasons


def main(argv: Sequence[str] | None = None) -> int:
    """Check readiness; see the module docstring.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python deploy/healthcheck.py", description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, default=1, help="the worker's process id (default 1)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    identity = f"{args.pid}@{socket.gethostname()}"
    try:
        reasons = asyncio.run(unready_reasons(settings, identity, process_started_at(args.pid)))
    except Exception as err:  # unreachable server, unknown namespace, ...: not ready, say why
        reasons = [f"cannot ask Temporal at {settings.temporal_address}: {err}"]
    for reason in reasons:
        print(f"not ready: {reason}", file=sys.stderr)
    return 1 if reasons else 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: the Temporal client's native threads may still be winding down
    # and can abort a finalizing interpreter (SIGABRT), which would turn a clear answer into a crash.
    os._exit(status)
