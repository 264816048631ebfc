"""The minimal workflow of the poll loop's shape, for ``benchmarks/load.py``: what the server itself allows.

``rounds`` times: a durable timer of ``interval_seconds``, then one activity that does nothing but
return the wall clock (local or remote). Nothing else: no search attributes, no saves, no payloads
worth the name. The worker that runs it is started by ``load.py`` as its own process
(``load.py --serve-minimal-worker ...``), so its CPU time is measured apart from the load driver's.

Not a benchmark by itself: ``make bench`` runs every ``benchmarks/*.py``, so running this file only
says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow

WORKFLOW_NAME = "BenchMinimalWorkflow"
ACTIVITY_NAME = "bench_noop"


@dataclass(frozen=True)
class MinimalInput:
    """Shape of one minimal job."""

    rounds: int = 6
    interval_seconds: float = 5.0
    local: bool = True


@activity.defn(name=ACTIVITY_NAME)
async def noop() -> float:
    """Does nothing; returns when it ran (wall clock), which is the poll time the benchmark reads."""
    return time.time()


@workflow.defn(name=WORKFLOW_NAME)
class MinimalWorkflow:
    """Timer, then one no-op activity, ``rounds`` times."""

    @workflow.run
    async def run(self, input: MinimalInput) -> list[float]:
        ran: list[float] = []
        for _ in range(input.rounds):
            await workflow.sleep(timedelta(seconds=input.interval_seconds))
            if input.local:
                at = await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=10))
            else:
                at = await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=10))
            ran.append(at)
        return ran


if __name__ == "__main__":
    print("helper of benchmarks/load.py (the minimal workflow); nothing to measure on its own")
