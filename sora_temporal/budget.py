"""Daily budgets, enforced before anything is spent: a ledger of reservations in the catalogue.

Before ``submit_video`` creates a Sora job it reserves the job's estimated cost
(:meth:`Ledger.reserve`). One transaction inserts the workflow's reservation and adds its cost to
the day's counter of every budget it falls under (all jobs, ``*``; and its ``budget_account``,
e.g. an API key) with a conditional ``UPDATE budget_days SET spent = spent + :cost WHERE spent +
:cost <= :limit``. If any counter would pass its limit, nothing of it is kept and the job is refused.

Race-free on both databases: on PostgreSQL the row lock serialises concurrent updates of a counter,
and the ``WHERE`` is evaluated again on the row as the previous writer left it; on SQLite every
transaction here starts with a write, so it holds the database's write lock from its first
statement on (no read snapshot to go stale). A burst of concurrent starts can never overshoot.

Idempotent per workflow: a reservation is keyed on the workflow id, so a retried submit does not
reserve twice. It is released (:meth:`Ledger.release`) only when nothing was created (the Videos API
refused the create cleanly); a job that may exist stays counted. Days are UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from sora_temporal.db import Base, VideoRow
from sora_temporal.pricing import MICROS_PER_USD, usd

ALL_JOBS = "*"
"""The account every job's cost is counted under: the global budget's."""
HELD = "held"
RELEASED = "released"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BudgetReservation(Base):
    """One workflow's reserved cost: ``held`` (counted) or ``released`` (nothing was created)."""

    __tablename__ = "budget_reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    account: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_budget_reservations_day", "day"),)


class BudgetDay(Base):
    """What one account has reserved on one UTC day, in micro-dollars: the counter budgets guard."""

    __tablename__ = "budget_days"

    account: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    spent_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


@dataclass(frozen=True)
class Limit:
    """A daily budget of one account.

    Attributes:
        account: ``*`` for all jobs, or a ``budget_account``.
        usd_per_day: The limit; ``None`` counts without limiting.
    """

    account: str
    usd_per_day: Decimal | None

    @property
    def micros(self) -> int | None:
        return None if self.usd_per_day is None else int(self.usd_per_day * MICROS_PER_USD)


class BudgetExceeded(Exception):
    """A job's estimated cost does not fit a daily budget; nothing was reserved or sent.

    Attributes:
        account: The budget that refused (``*``: the global one).
        limit_usd: Its daily limit.
        spent_usd: What it had reserved that day.
        cost_usd: The job's estimated cost.
    """

    def __init__(self, account: str, limit_usd: Decimal, spent_usd: Decimal, cost_usd: Decimal) -> None:
        which = "the daily budget" if account == ALL_JOBS else "this API key's daily budget"
        super().__init__(
            f"refused by {which}: the job's estimated cost ${cost_usd:.2f} would bring today's spend "
            f"(UTC) from ${spent_usd:.2f} past ${limit_usd:.2f}; nothing was sent to the Videos API"
        )
        self.account = account
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.cost_usd = cost_usd


@dataclass(frozen=True)
class DaySpend:
    """Reserved spend of one UTC day and model."""

    day: date
    model: str
    jobs: int
    usd: Decimal


class Ledger:
    """Reservations and daily counters in the catalogue's database; a transaction per call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reserve(
        self,
        workflow_id: str,
        *,
        model: str,
        seconds: int,
        cost_micros: int,
        limits: list[Limit],
        account: str | None = None,
        today: date | None = None,
    ) -> bool:
        """Reserve ``cost_micros`` for ``workflow_id`` under every one of ``limits``, or nothing.

        Returns:
            ``True`` when this call reserved, ``False`` when the workflow already held its reservation.

        Raises:
            BudgetExceeded: A limit would be passed; nothing was kept.
        """
        day = today or _utcnow().date()
        now = _utcnow()
        with self.engine.begin() as connection:
            # The first statement writes: on SQLite the transaction holds the write lock from here on.
            inserted = connection.execute(
                self._insert(BudgetReservation)
                .values(
                    workflow_id=workflow_id,
                    day=day,
                    account=account,
                    model=model,
                    seconds=seconds,
                    cost_micros=cost_micros,
                    state=HELD,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["workflow_id"])
                # RETURNING, not rowcount: PostgreSQL's driver reports no count for an insert.
                .returning(BudgetReservation.id)
            ).first()
            if inserted is None:
                again = connection.execute(
                    update(BudgetReservation)
                    .where(BudgetReservation.workflow_id == workflow_id, BudgetReservation.state == RELEASED)
                    .values(
                        state=HELD,
                        day=day,
                        account=account,
                        model=model,
                        seconds=seconds,
                        cost_micros=cost_micros,
                        updated_at=now,
                    )
                ).rowcount
                if not again:
                    return False  # already held: a retried submit pays nothing twice
            # Always in the same order (``*`` first), so two transactions never wait on each other.
            for limit in limits:
                self._charge(connection, limit, day, cost_micros, now)
            connection.execute(
                update(VideoRow)
                .where(VideoRow.workflow_id == workflow_id)
                .values(estimated_cost_usd=float(usd(cost_micros)))
            )
        return True

    def _charge(self, connection: Connection, limit: Limit, day: date, cost: int, now: datetime) -> None:
        connection.execute(
            self._insert(BudgetDay)
            .values(account=limit.account, day=day, spent_micros=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["account", "day"])
        )
        stmt = update(BudgetDay).where(BudgetDay.account == limit.account, BudgetDay.day == day)
        if limit.micros is not None:
            stmt = stmt.where(BudgetDay.spent_micros + cost <= limit.micros)
        charged = connection.execute(
            stmt.values(spent_micros=BudgetDay.spent_micros + cost, updated_at=now)
        ).rowcount
        if not charged:
            spent = connection.execute(
                select(BudgetDay.spent_micros).where(BudgetDay.account == limit.account, BudgetDay.day == day)
            ).scalar_one()
            assert limit.usd_per_day is not None
            raise BudgetExceeded(limit.account, limit.usd_per_day, usd(spent), usd(cost))

    def release(self, workflow_id: str) -> bool:
        """Give back a held reservation (nothing was created); ``False`` if none was held."""
        now = _utcnow()
        with self.engine.begin() as connection:
            released = connection.execute(
                update(BudgetReservation)
                .where(BudgetReservation.workflow_id == workflow_id, BudgetReservation.state == HELD)
                .values(state=RELEASED, updated_at=now)
            ).rowcount
            if not released:
                return False
            held = connection.execute(
                select(BudgetReservation.day, BudgetReservation.account, BudgetReservation.cost_micros).where(
                    BudgetReservation.workflow_id == workflow_id
                )
            ).one()
            for account in (ALL_JOBS, held.account):
                if account is None:
                    continue
                connection.execute(
                    update(BudgetDay)
                    .where(BudgetDay.account == account, BudgetDay.day == held.day)
                    .values(spent_micros=BudgetDay.spent_micros - held.cost_micros, updated_at=now)
                )
        return True

    def spent(self, account: str = ALL_JOBS, day: date | None = None) -> Decimal:
        """What ``account`` has reserved on ``day`` (today, UTC, by default)."""
        with self.engine.connect() as connection:
            micros = connection.execute(
                select(BudgetDay.spent_micros).where(
                    BudgetDay.account == account, BudgetDay.day == (day or _utcnow().date())
                )
            ).scalar_one_or_none()
        return usd(micros or 0)

    def by_day(self, since: date | None = None) -> list[DaySpend]:
        """Held reservations totalled by UTC day and model, oldest day first."""
        stmt = (
            select(
                BudgetReservation.day,
                BudgetReservation.model,
                func.count(),
                func.sum(BudgetReservation.cost_micros),
            )
            .where(BudgetReservation.state == HELD)
            .group_by(BudgetReservation.day, BudgetReservation.model)
            .order_by(BudgetReservation.day, BudgetReservation.model)
        )
        if since is not None:
            stmt = stmt.where(BudgetReservation.day >= since)
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        return [DaySpend(day=d, model=m, jobs=int(n), usd=usd(int(total or 0))) for d, m, n, total in rows]

    def held(self, workflow_id: str) -> bool:
        """Whether ``workflow_id`` holds a reservation."""
        with self.engine.connect() as connection:
            state = connection.execute(
                select(BudgetReservation.state).where(BudgetReservation.workflow_id == workflow_id)
            ).scalar_one_or_none()
        return state == HELD

    def _insert(self, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


def today_utc() -> date:
    """Today's date in UTC: the budget day."""
    return _utcnow().date()
