"""The budget ledger: reservations are atomic, idempotent per workflow, and never overshoot.

On SQLite and on PostgreSQL (``database_url``), with real concurrency: threads with their own
connections race for the same day's counter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from sora_temporal.budget import ALL_JOBS, BudgetExceeded, Ledger, Limit
from sora_temporal.db import VideoCatalog
from sora_temporal.types import JobStatus, SaveInput, VideoRequest
from support import migrated_engine

FORTY_CENTS = 400_000
DAY = date(2026, 11, 30)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = migrated_engine(database_url)
    yield engine
    engine.dispose()


def _reserve(ledger: Ledger, workflow_id: str, limits: list[Limit], account: str | None = None) -> bool:
    return ledger.reserve(
        workflow_id,
        model="sora-2",
        seconds=4,
        cost_micros=FORTY_CENTS,
        limits=limits,
        account=account,
        today=DAY,
    )


def test_thirty_concurrent_reservations_against_a_budget_for_ten_keep_exactly_ten(engine: Engine) -> None:
    ledger = Ledger(engine)
    limits = [Limit(ALL_JOBS, Decimal("4.00"))]
    start = threading.Barrier(30)

    def attempt(n: int) -> bool:
        start.wait()
        try:
            _reserve(ledger, f"burst-{n}", limits)
        except BudgetExceeded:
            return False
        return True

    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(attempt, range(30)))

    assert outcomes.count(True) == 10
    assert ledger.spent(ALL_JOBS, DAY) == Decimal("4.00")
    assert [(d.jobs, d.usd) for d in ledger.by_day()] == [(10, Decimal("4.00"))]


def test_a_retried_reservation_does_not_count_twice(engine: Engine) -> None:
    ledger = Ledger(engine)
    limits = [Limit(ALL_JOBS, Decimal("1.00"))]

    assert _reserve(ledger, "again", limits) is True
    assert _reserve(ledger, "again", limits) is False

    assert ledger.spent(ALL_JOBS, DAY) == Decimal("0.40")


def test_a_released_reservation_frees_its_cost_and_may_be_taken_again(engine: Engine) -> None:
    ledger = Ledger(engine)
    limits = [Limit(ALL_JOBS, Decimal("0.40"))]
    _reserve(ledger, "first", limits)
    with pytest.raises(BudgetExceeded):
        _reserve(ledger, "second", limits)

    assert ledger.release("first") is True
    assert ledger.release("first") is False
    assert _reserve(ledger, "second", limits) is True
    assert _reserve(ledger, "first", [Limit(ALL_JOBS, Decimal("0.80"))]) is True

    assert ledger.spent(ALL_JOBS, DAY) == Decimal("0.80")


def test_a_refusal_by_one_budget_keeps_nothing_in_the_other(engine: Engine) -> None:
    ledger = Ledger(engine)
    limits = [Limit(ALL_JOBS, None), Limit("api-key:abc", Decimal("0.40"))]
    _reserve(ledger, "key-1", limits, account="api-key:abc")

    with pytest.raises(BudgetExceeded) as refused:
        _reserve(ledger, "key-2", limits, account="api-key:abc")
    _reserve(
        ledger, "other-key", [Limit(ALL_JOBS, None), Limit("api-key:def", Decimal("0.40"))], "api-key:def"
    )

    assert refused.value.account == "api-key:abc"
    assert "this API key's daily budget" in str(refused.value) and "$0.40" in str(refused.value)
    assert ledger.spent(ALL_JOBS, DAY) == Decimal("0.80")
    assert ledger.spent("api-key:abc", DAY) == Decimal("0.40")
    assert not ledger.held("key-2")


def test_a_reservation_records_the_estimate_in_the_jobs_row(engine: Engine) -> None:
    catalog = VideoCatalog(engine)
    catalog.save(SaveInput("priced", JobStatus.SUBMITTING, request=VideoRequest("a lantern")))

    _reserve(Ledger(engine), "priced", [Limit(ALL_JOBS, None)])

    row = catalog.get("priced")
    assert row is not None and row.estimated_cost_usd == pytest.approx(0.40)


def test_without_a_limit_spend_is_still_counted(engine: Engine) -> None:
    ledger = Ledger(engine)
    for n in range(3):
        _reserve(ledger, f"free-{n}", [Limit(ALL_JOBS, None)])

    assert ledger.spent(ALL_JOBS, DAY) == Decimal("1.20")
    assert ledger.by_day(since=date(2026, 12, 1)) == []
