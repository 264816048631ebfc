"""The catalogue of videos: one row per workflow, written idempotently.

SQLite (a file under ``./data/``) is the embedded default; PostgreSQL is the production database.
Writes are upserts keyed on ``workflow_id`` so that an activity retried by Temporal never duplicates
a row, and a terminal state is never overwritten by a stale non-terminal one.
"""

from __future__ import annotations

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
    Integer,
    String,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from sora_temporal.types import JobStatus, SaveInput

_TERMINAL_VALUES = tuple(s.value for s in JobStatus if s.is_terminal)


class Base(DeclarativeBase):
    pass


def _utcnow() -> datetime:
    return datetime.now(UTC)


class VideoRow(Base):
    """One generated (or attempted) video."""

    __tablename__ = "videos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    video_id: Mapped[str | None] = mapped_column(String(255), index=True)
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    size: Mapped[str] = mapped_column(String(32), nullable=False)
    seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    has_reference_image: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(128))
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

    def as_dict(self) -> dict[str, Any]:
        """The row as plain values (for ``starter.py status --json`` and tests)."""
        out: dict[str, Any] = {}
        for column in self.__table__.columns:
            value = getattr(self, column.key)
            out[column.key] = value.isoformat() if isinstance(value, datetime) else value
        return out


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


def create_tables(engine: Engine) -> None:
    """Create missing tables (the schema is additive so far)."""
    Base.metadata.create_all(engine)


class VideoCatalog:
    """Reads and writes the ``videos`` table; a session per call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def save(self, change: SaveInput) -> None:
        """Upsert the workflow's row.

        Fields left ``None`` keep their stored value. Once a row is terminal, only a write with the
        same terminal status may touch it (a retried save), so a late non-terminal write can't
        resurrect it.
        """
        now = _utcnow()
        values: dict[str, Any] = {"workflow_id": change.workflow_id, "status": change.status.value}
        if change.request is not None:
            values |= {
                "prompt": change.request.prompt,
                "model": change.request.model,
                "size": change.request.size,
                "seconds": change.request.seconds,
                "has_reference_image": change.request.reference_image is not None,
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
        if change.status is JobStatus.COMPLETED:
            values["progress"] = 100
        if change.status.is_terminal:
            values["completed_at"] = now
        values["updated_at"] = now

        insert_values = {
            "prompt": "",
            "model": "",
            "size": "",
            "seconds": 0,
            "progress": 0,
            "created_at": now,
            **values,
        }
        update_values = {k: v for k, v in values.items() if k != "workflow_id"}
        backend = self.engine.dialect.name
        if backend == "postgresql":
            pg = postgresql.insert(VideoRow).values(**insert_values)
            stmt: Any = pg.on_conflict_do_update(
                index_elements=["workflow_id"],
                set_=update_values,
                where=_may_update(change.status),
            )
        elif backend == "sqlite":
            lite = sqlite.insert(VideoRow).values(**insert_values)
            stmt = lite.on_conflict_do_update(
                index_elements=["workflow_id"],
                set_=update_values,
                where=_may_update(change.status),
            )
        else:  # pragma: no cover - only the two shipped backends are supported
            raise RuntimeError(f"unsupported database backend {backend!r}")
        with self._sessions.begin() as session:
            session.execute(stmt)

    def get(self, workflow_id: str) -> VideoRow | None:
        """The row of one workflow, if any."""
        with self._sessions() as session:
            return session.scalars(select(VideoRow).where(VideoRow.workflow_id == workflow_id)).first()

    def claimed_by_other(self, video_id: str, workflow_id: str) -> bool:
        """Whether another workflow's row already owns this Sora video id."""
        with self._sessions() as session:
            stmt = select(VideoRow.id).where(
                VideoRow.video_id == video_id, VideoRow.workflow_id != workflow_id
            )
            return session.scalars(stmt).first() is not None

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


def _may_update(incoming: JobStatus) -> Any:
    current = VideoRow.status
    return current.not_in(_TERMINAL_VALUES) | (current == incoming.value)
