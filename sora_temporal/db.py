"""The catalogue of videos: one row per workflow, written idempotently.

SQLite (``sora.db`` in the data directory) is the embedded default; PostgreSQL is the production database.
Writes are upserts keyed on ``workflow_id`` so that an activity retried by Temporal never duplicates
a row, and a terminal row is never overwritten by another state, with one exception: a ``timed_out``
row may become ``completed_late`` (see :meth:`VideoCatalog.save`). A Sora video id
belongs to at most one row (a unique index): :meth:`VideoCatalog.claim` takes it atomically.

Every string is passed through :func:`clean_text` on its way in: the Videos API (or a gateway in
front of it) decides what error codes and messages look like, and PostgreSQL refuses NUL characters
and values longer than a column, on every attempt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy import exc as sql
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from sora_temporal.types import JobStatus, SaveInput
from sora_temporal.validation import InvalidVideoRequest

_TERMINAL_VALUES = tuple(s.value for s in JobStatus if s.is_terminal)
# Longest text kept in an unbounded (TEXT) column: a gateway's 100 KB error message is not a record.
MAX_TEXT_CHARS = 8192
# The ``error_code`` column's length; error codes are cut to it wherever they are made.
MAX_ERROR_CODE_CHARS = 128
# Control characters other than tab, newline and carriage return (NUL above all: PostgreSQL refuses it).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INT32 = (-(2**31), 2**31 - 1)
# Keys identify rows: they are refused, never altered, when they do not fit.
_KEYS = ("workflow_id", "video_id")


def clean_text(value: str, limit: int | None = MAX_TEXT_CHARS) -> str:
    """A string every backend stores as is: valid UTF-8, no control characters, at most ``limit`` chars.

    Unpaired surrogates become ``?``; tab, newline and carriage return are kept. A string cut short
    ends in ``…``.
    """
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL.sub("", text.encode("utf-8", "replace").decode("utf-8"))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


class Base(DeclarativeBase):
    """The tables the revisions in ``migrations/`` manage; only those revisions make or change them.

    ``videos`` is defined here, the API's ``api_jobs`` in ``api/store.py``.
    """


def _utcnow() -> datetime:
    return datetime.now(UTC)


class VideoRow(Base):
    """One generated (or attempted) video."""

    __tablename__ = "videos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    # Unique (``uq_videos_video_id``, below): two workflows can never own one Sora job.
    video_id: Mapped[str | None] = mapped_column(String(255))
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    size: Mapped[str] = mapped_column(String(32), nullable=False)
    seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    has_reference_image: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(MAX_ERROR_CODE_CHARS))
    error_message: Mapped[str | None] = mapped_column(Text)
    blob_url: Mapped[str | None] = mapped_column(Text)
    blob_download_url: Mapped[str | None] = mapped_column(Text)
    thumbnail_url: Mapped[str | None] = mapped_column(Text)
    spritesheet_url: Mapped[str | None] = mapped_column(Text)
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    remote_may_be_running: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the job was estimated to cost when it was submitted (``sora_temporal.pricing``); what
    # budgets count is the exact reservation in ``budget_reservations``.
    estimated_cost_usd: Mapped[float | None] = mapped_column(Float)

    # NULLs do not collide: rows without a job yet are not constrained.
    __table_args__ = (Index("uq_videos_video_id", "video_id", unique=True),)

    def as_dict(self) -> dict[str, Any]:
        """The row as plain values (for ``starter.py status --json`` and tests)."""
        out: dict[str, Any] = {}
        for column in self.__table__.columns:
            value = getattr(self, column.key)
            out[column.key] = value.isoformat() if isinstance(value, datetime) else value
        return out


MAX_IDEMPOTENCY_KEY_CHARS = 255


class ApiJob(Base):
    """One job created through the API."""

    __tablename__ = "api_jobs"
    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key", name="uq_api_jobs_owner_idempotency_key"),
        Index("ix_api_jobs_owner_seq", "owner", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    """Creation order, for stable list pagination (ids are random)."""
    id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    workflow_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    """SHA-256 of the key that created the job (:func:`api.auth.owner_of`), never the key."""
    idempotency_key: Mapped[str | None] = mapped_column(String(MAX_IDEMPOTENCY_KEY_CHARS))
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    """SHA-256 of the request's fields, to tell a replay from another request under the same key."""
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    size: Mapped[str] = mapped_column(String(32), nullable=False)
    seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    has_reference: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    content_token: Mapped[str] = mapped_column(String(64), nullable=False)
    """Unguessable; lets the job's ``url`` be fetched without the key (a player, a plain fetch)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def make_engine(database_url: str) -> Engine:
    """Create an engine; for SQLite, create the file's directory and use WAL so readers don't block."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        # Plain postgresql:// means psycopg 3 here, the driver we ship.
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_pre_ping=True)


class VideoCatalog:
    """Reads and writes the ``videos`` table; a session per call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def save(self, change: SaveInput) -> None:
        """Upsert the workflow's row.

        Fields left ``None`` keep their stored value. Once a row is terminal it keeps its status:
        only a write with the same terminal status may touch it (a retried save, or a note added to
        a ``timed_out`` row while its late video is watched for), so a late write can never
        resurrect or contradict it. The one transition out of a terminal status is ``timed_out`` →
        ``completed_late``: the job the caller was told had timed out finished upstream within the
        salvage window and its video is now stored.
        """
        now = _utcnow()
        values: dict[str, Any] = {"workflow_id": change.workflow_id, "status": change.status.value}
        if change.request is not None:
            values |= {
                "prompt": change.request.prompt,
                "model": change.request.model,
                "size": change.request.size,
                "seconds": change.request.seconds,
                "has_reference_image": change.request.has_reference_image,
            }
        optional = {
            "video_id": change.video_id,
            "progress": change.progress,
            "error_code": change.error_code,
            "error_message": change.error_message,
            "byte_size": change.byte_size,
            "sha256": change.sha256,
            "remote_may_be_running": change.remote_may_be_running,
        }
        values |= {k: v for k, v in optional.items() if v is not None}
        if change.urls is not None:
            urls = asdict(change.urls)
            values |= {
                "blob_url": urls["video_url"],
                "blob_download_url": urls["video_download_url"],
                "thumbnail_url": urls["thumbnail_url"],
                "spritesheet_url": urls["spritesheet_url"],
            }
        if change.status.is_success:
            values["progress"] = 100
        if change.status.is_terminal:
            values["completed_at"] = now
        values["updated_at"] = now
        stmt = self._upsert(storable(values), where=_may_update(change.status))
        with self._sessions.begin() as session:
            session.execute(stmt)

    def claim(self, workflow_id: str, video_id: str) -> bool:
        """Record ``video_id`` as the job of ``workflow_id``'s row, unless another row owns it.

        Atomic (the unique index on ``video_id`` decides), so two workflows can never own one job.
        Claiming a job the row already holds succeeds again; a row that holds a *different* job is
        not changed.

        Returns:
            Whether the row now holds ``video_id``.

        Raises:
            InvalidVideoRequest: An id that cannot be stored.
        """
        now = _utcnow()
        values = storable(
            {"workflow_id": workflow_id, "video_id": video_id, "status": JobStatus.SUBMITTING.value}
        )
        stmt = self._upsert(
            values,
            set_={"video_id": values["video_id"], "updated_at": now},
            # A terminal row is an earlier workflow's under a reused id (Temporal's retention
            # removed it): its job no longer blocks this one.
            where=VideoRow.video_id.is_(None) | VideoRow.status.in_(_TERMINAL_VALUES),
        )
        try:
            with self._sessions.begin() as session:
                session.execute(stmt)
                held = session.scalars(
                    select(VideoRow.video_id).where(VideoRow.workflow_id == workflow_id)
                ).first()
        except sql.IntegrityError as err:
            if "video_id" not in str(err.orig):
                raise
            return False
        return held == video_id

    def claimed_video(self, workflow_id: str) -> str | None:
        """The Sora video id this workflow's (non-terminal) row has claimed, if any."""
        with self._sessions() as session:
            return session.scalars(
                select(VideoRow.video_id).where(
                    VideoRow.workflow_id == workflow_id, VideoRow.status.not_in(_TERMINAL_VALUES)
                )
            ).first()

    def set_estimated_cost(self, workflow_id: str, usd: float) -> None:
        """Record the job's estimated cost in its row (a job the budget refused keeps what it would cost)."""
        with self._sessions.begin() as session:
            session.execute(
                update(VideoRow).where(VideoRow.workflow_id == workflow_id).values(estimated_cost_usd=usd)
            )

    def workflow_of(self, video_id: str) -> str | None:
        """The workflow whose row holds the Sora job ``video_id``, if any (for webhook events)."""
        with self._sessions() as session:
            return session.scalars(select(VideoRow.workflow_id).where(VideoRow.video_id == video_id)).first()

    def _upsert(self, values: dict[str, Any], *, where: Any, set_: dict[str, Any] | None = None) -> Any:
        """``INSERT ... ON CONFLICT (workflow_id) DO UPDATE``; new rows get placeholders for required fields."""
        now = values.get("updated_at", _utcnow())
        insert_values = {
            "prompt": "",
            "model": "",
            "size": "",
            "seconds": 0,
            "progress": 0,
            "created_at": now,
            "updated_at": now,
            **values,
        }
        update_values = set_ if set_ is not None else {k: v for k, v in values.items() if k != "workflow_id"}
        backend = self.engine.dialect.name
        if backend == "postgresql":
            pg = postgresql.insert(VideoRow).values(**insert_values)
            return pg.on_conflict_do_update(index_elements=["workflow_id"], set_=update_values, where=where)
        if backend == "sqlite":
            lite = sqlite.insert(VideoRow).values(**insert_values)
            return lite.on_conflict_do_update(index_elements=["workflow_id"], set_=update_values, where=where)
        raise RuntimeError(f"unsupported database backend {backend!r}")  # pragma: no cover

    def get(self, workflow_id: str) -> VideoRow | None:
        """The row of one workflow, if any."""
        with self._sessions() as session:
            return session.scalars(select(VideoRow).where(VideoRow.workflow_id == workflow_id)).first()

    def recent(self, limit: int = 20) -> list[VideoRow]:
        """The newest rows first."""
        with self._sessions() as session:
            stmt = select(VideoRow).order_by(VideoRow.created_at.desc(), VideoRow.id.desc()).limit(limit)
            return list(session.scalars(stmt))

    def close(self) -> None:
        """Dispose of the engine's connection pool."""
        self.engine.dispose()


@contextmanager
def open_catalog(database_url: str) -> Iterator[VideoCatalog]:
    """A catalogue on its own engine, disposed of on exit (for short-lived readers like the starter)."""
    catalog = VideoCatalog(make_engine(database_url))
    try:
        yield catalog
    finally:
        catalog.close()


def storable(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` for the ``videos`` table made storable on every backend: the one sanitiser.

    Text is cleaned and cut to its column's length (:func:`clean_text`); integers are held to the
    column's range. Keys (``workflow_id``, ``video_id``) are refused rather than altered, so two ids
    can never be stored as one.

    Raises:
        InvalidVideoRequest: A key that does not fit its column as it is.
    """
    columns = VideoRow.__table__.columns
    out: dict[str, Any] = {}
    for name, value in values.items():
        column_type = columns[name].type if name in columns else None
        limit = getattr(column_type, "length", None) or MAX_TEXT_CHARS
        if isinstance(value, str):
            cleaned = clean_text(value, limit)
            if name in _KEYS and (cleaned != value or not value):
                raise InvalidVideoRequest(
                    name, f"{name} {value[:80]!r} cannot be stored: at most {limit} plain characters"
                )
            value = cleaned
        elif (
            isinstance(value, int)
            and not isinstance(value, bool)
            and isinstance(column_type, Integer)
            and not isinstance(column_type, BigInteger)
        ):
            value = min(max(value, _INT32[0]), _INT32[1])
        out[name] = value
    return out


def _may_update(incoming: JobStatus) -> Any:
    current = VideoRow.status
    allowed = current.not_in(_TERMINAL_VALUES) | (current == incoming.value)
    if incoming is JobStatus.COMPLETED_LATE:
        allowed = allowed | (current == JobStatus.TIMED_OUT.value)
    return allowed
