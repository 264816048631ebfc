"""The ``api`` process: the Videos protocol served over durable workflows.

``create_app`` takes its dependencies (settings, Temporal client, database engine, storage); any
left out is built from the one :class:`~sora_temporal.settings.Settings` object when the app starts,
and closed when it stops.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import errors, page, webhooks
from api.auth import KeyRing
from api.jobs import Jobs
from api.routes import router
from api.services import Services
from api.store import JobStore
from sora_temporal.db import make_engine
from sora_temporal.schema import SchemaProblem, ensure_current
from sora_temporal.settings import Settings
from sora_temporal.storage.base import Storage
from sora_temporal.storage.factory import build_storage

log = logging.getLogger(__name__)

# The largest request body: a reference image at the configured limit plus the form around it.
FORM_OVERHEAD_BYTES = 1024 * 1024


def create_app(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    engine: Engine | None = None,
    storage: Storage | None = None,
) -> FastAPI:
    """Build the app.

    Args:
        settings: Temporal address, task queue, database URL, limits, and the API's own keys, links
            and job timing (``settings.api``); default ``Settings.from_env()``.
        client: A connected Temporal client; default: connect to ``settings.temporal_address``.
        engine: The catalogue's database; default: ``settings.database_url``.
        storage: Where videos are stored; default: the configured backend.

    Raises:
        ValueError: No API key is configured (the API never runs open).
    """
    product = settings or Settings.from_env()
    keys = KeyRing(product.api.keys)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as owned:
            db = engine
            if db is None:
                db = make_engine(product.database_url)
                owned.callback(db.dispose)
            store = JobStore(db)
            await run_in_threadpool(_check_schema, db, auto_upgrade=product.embedded_database)
            temporal = client or await Client.connect(
                product.temporal_address, namespace=product.temporal_namespace
            )
            store_backend = storage
            if store_backend is None:
                store_backend = build_storage(product.storage)
                owned.push_async_callback(store_backend.aclose)
            jobs = await Jobs.connect(temporal, task_queue=product.task_queue)
            app.state.services = Services(product, keys, store, jobs, store_backend)
            yield

    app = FastAPI(
        title="sora-temporal Videos API",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    errors.install(app)
    app.include_router(router)
    app.include_router(webhooks.router)
    app.include_router(page.router)
    app.add_middleware(BodyLimit, max_bytes=product.max_reference_image_bytes + FORM_OVERHEAD_BYTES)
    return app


def _check_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """The database at the newest revision, ``api_jobs`` included, as the worker requires it.

    Only the embedded SQLite default is upgraded here; any other database is migrated beforehand
    (``make migrate``, or the compose stack's ``migrate`` service).

    Raises:
        SchemaProblem: The database is not current and may not be upgraded here.
    """
    try:
        ensure_current(engine, auto_upgrade=auto_upgrade)
    except SchemaProblem as err:
        log.critical("refusing to start: %s", err)
        raise


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` (413) without reading them into memory first."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise errors.BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except errors.BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = errors.ApiError(
            413, f"The request body is larger than {self.max_bytes} bytes.", code="request_too_large"
        ).response()
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})
