"""The ``api_jobs`` table: the service's own video ids, who owns them, and idempotency keys.

One row per job created through the API, beside (never inside) the worker's ``videos`` catalogue,
which it joins on ``workflow_id``. The table is part of the catalogue's schema: it shares the
catalogue's metadata, is created and changed by the Alembic revisions in ``migrations/`` (``0003``)
and checked for drift with them. Idempotency rests on a unique index over ``(owner,
idempotency_key)``: two racing requests both try to insert and the database lets exactly one win,
on SQLite and PostgreSQL alike; there is no check-then-insert window.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import (
    Engine,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from sora_temporal.db import ApiJob, VideoRow


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_public_id() -> str:
    """A fresh ``video_<32 hex>`` id."""
    return f"video_{secrets.token_hex(16)}"


def workflow_id_for(public_id: str) -> str:
    """The workflow id of a job: ``api-<hex>``, the same hex as its public id, so operators can match them."""
    return "api-" + public_id.removeprefix("video_")


@dataclass(frozen=True)
class NewJob:
    """What :meth:`JobStore.create` inserts."""

    public_id: str
    owner: str
    idempotency_key: str | None
    fingerprint: str
    prompt: str
    model: str
    size: str
    seconds: int
    has_reference: bool


@dataclass(frozen=True)
class JobView:
    """A job and its catalogue row (``None`` until the workflow first saved it)."""

    job: ApiJob
    row: VideoRow | None


@dataclass(frozen=True)
class Created:
    """The outcome of :meth:`JobStore.create`: a new job, or the one an earlier request made."""

    job: ApiJob
    new: bool


Order = Literal["asc", "desc"]


class JobStore:
    """Reads and writes ``api_jobs`` (and reads ``videos``); a session per call, synchronous.

    Args:
        engine: The catalogue's database; both tables live there.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def create(self, new: NewJob) -> Created:
        """Insert a job, or return the existing one when ``(owner, idempotency_key)`` is taken.

        Raises:
            IntegrityError: Only for a conflict that is not the idempotency key (never in practice:
                ids carry 128 random bits).
        """
        job = ApiJob(
            id=new.public_id,
            workflow_id=workflow_id_for(new.public_id),
            owner=new.owner,
            idempotency_key=new.idempotency_key,
            fingerprint=new.fingerprint,
            prompt=new.prompt,
            model=new.model,
            size=new.size,
            seconds=new.seconds,
            has_reference=new.has_reference,
            content_token=secrets.token_urlsafe(32),
            created_at=_utcnow(),
        )
        try:
            with self._sessions.begin() as session:
                session.add(job)
            return Created(job, new=True)
        except IntegrityError:
            if new.idempotency_key is None:
                raise
        with self._sessions() as session:
            existing = session.scalars(
                select(ApiJob).where(ApiJob.owner == new.owner, ApiJob.idempotency_key == new.idempotency_key)
            ).one()
        return Created(existing, new=False)

    def forget(self, public_id: str) -> None:
        """Remove a job whose workflow could not be started (and whose client will not retry it)."""
        with self._sessions.begin() as session:
            job = session.scalars(select(ApiJob).where(ApiJob.id == public_id)).first()
            if job is not None:
                session.delete(job)

    def get(self, owner: str, public_id: str) -> JobView | None:
        """The caller's job, unless deleted; ``None`` for unknown ids and other owners' jobs alike."""
        with self._sessions() as session:
            found = session.execute(
                select(ApiJob, VideoRow)
                .outerjoin(VideoRow, VideoRow.workflow_id == ApiJob.workflow_id)
                .where(ApiJob.id == public_id, ApiJob.owner == owner, ApiJob.deleted_at.is_(None))
            ).first()
        return JobView(found[0], found[1]) if found is not None else None

    def get_by_token(self, public_id: str, token: str) -> JobView | None:
        """A job by id whose content token is ``token`` (compared in constant time)."""
        with self._sessions() as session:
            found = session.execute(
                select(ApiJob, VideoRow)
                .outerjoin(VideoRow, VideoRow.workflow_id == ApiJob.workflow_id)
                .where(ApiJob.id == public_id, ApiJob.deleted_at.is_(None))
            ).first()
        if found is None or not secrets.compare_digest(found[0].content_token.encode(), token.encode()):
            return None
        return JobView(found[0], found[1])

    def page(self, owner: str, *, after: str | None, limit: int, order: Order) -> tuple[list[JobView], bool]:
        """One page of the caller's jobs and whether more follow.

        Raises:
            LookupError: ``after`` is not one of the caller's jobs.
        """
        with self._sessions() as session:
            stmt = (
                select(ApiJob, VideoRow)
                .outerjoin(VideoRow, VideoRow.workflow_id == ApiJob.workflow_id)
                .where(ApiJob.owner == owner, ApiJob.deleted_at.is_(None))
            )
            if after is not None:
                cursor = session.scalars(
                    select(ApiJob.seq).where(ApiJob.id == after, ApiJob.owner == owner)
                ).first()
                if cursor is None:
                    raise LookupError(after)
                stmt = stmt.where(ApiJob.seq > cursor if order == "asc" else ApiJob.seq < cursor)
            stmt = stmt.order_by(ApiJob.seq.asc() if order == "asc" else ApiJob.seq.desc()).limit(limit + 1)
            rows = session.execute(stmt).all()
        views = [JobView(job, row) for job, row in rows]
        return views[:limit], len(views) > limit

    def mark_deleted(self, owner: str, public_id: str) -> bool:
        """Mark the caller's job deleted; ``False`` if it was not there (or already deleted)."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(ApiJob)
                .where(ApiJob.id == public_id, ApiJob.owner == owner, ApiJob.deleted_at.is_(None))
                .values(deleted_at=_utcnow())
            )
        return bool(getattr(result, "rowcount", 0))

    def catalogue_row(self, workflow_id: str) -> VideoRow | None:
        """The worker's row alone, by workflow id (the benchmark's baseline read)."""
        with self._sessions() as session:
            return session.scalars(select(VideoRow).where(VideoRow.workflow_id == workflow_id)).first()
