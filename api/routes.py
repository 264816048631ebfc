"""The Videos protocol's routes: create, retrieve, list, content, delete; plus health."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api.content import VARIANT_EXTENSIONS, VARIANT_TYPES, stream_object
from api.create_request import idempotency_key, read_create_request
from api.errors import ApiError, invalid, not_found, unavailable
from api.jobs import budget_account
from api.present import State, state_of, video_object
from api.reference import prepare_reference
from api.services import Services, services
from api.store import JobView, NewJob, new_public_id, workflow_id_for
from sora_temporal.errors import ReferenceImageError
from sora_temporal.storage.base import StorageError, StorageFailure
from sora_temporal.types import JobStatus, VideoRequest
from sora_temporal.validation import InvalidVideoRequest, validate_workflow_input

log = logging.getLogger(__name__)

router = APIRouter()
Svc = Annotated[Services, Depends(services)]

# Our state moves when the workflow polls upstream or stores the result; reading it is cheap.
POLL_AFTER_MS = 1000
CANCEL_REASON = "cancelled through the Videos API (DELETE)"


def _owner(svc: Services, request: Request) -> str:
    return svc.keys.owner(request.headers.get("authorization"))


def _finished_row(view: JobView) -> bool:
    return view.row is not None and JobStatus(view.row.status).is_terminal


def _public(svc: Services, url: str) -> bool:
    """Whether a stored URL can be fetched by anyone holding it (public blobs, a public local base)."""
    if not url.startswith(("https://", "http://")):
        return False
    return getattr(svc.storage, "access", None) == "public" or bool(
        getattr(svc.storage, "public_base_url", None)
    )


def _video_url(svc: Services, view: JobView, base: str) -> str:
    row = view.row
    if row is not None and row.blob_url and _public(svc, row.blob_url):
        return row.blob_url
    # Works with the key or without it (the token is the job's own capability), so a plain
    # fetch, a <video> element or a download manager can all use it.
    return f"{base}/v1/videos/{view.job.id}/content?token={view.job.content_token}"


def _answer(svc: Services, request: Request, view: JobView, state: State) -> JSONResponse:
    body = video_object(view, state, video_url=_video_url(svc, view, svc.base_url(request)))
    return JSONResponse(body, headers={"openai-poll-after-ms": str(POLL_AFTER_MS)})


async def _state(svc: Services, view: JobView) -> State:
    live = None if _finished_row(view) else await svc.jobs.live(view.job.workflow_id)
    return state_of(view, live)


def _storage_failure(err: StorageError, what: str) -> ApiError:
    if err.kind is StorageFailure.OBJECT_MISSING:
        return not_found(what)
    log.warning("storage failed: %s", err)
    return unavailable("The video store did not answer; try again.")


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests (its dependencies were reachable at start-up)."""
    return {"status": "ok"}


@router.post("/v1/videos")
async def create_video(request: Request, svc: Svc) -> JSONResponse:
    """Validate, then start a durable job; the same ``Idempotency-Key`` and body give the same job."""
    owner = _owner(svc, request)
    key = idempotency_key(request)
    body = await read_create_request(request, max_reference_bytes=svc.settings.max_reference_image_bytes)
    prepared = None
    if body.reference is not None:
        try:
            prepared = await prepare_reference(
                body.reference,
                body.size,
                storage=svc.storage,
                max_bytes=svc.settings.max_reference_image_bytes,
                url_policy=svc.settings.reference_url_policy,
            )
        except ReferenceImageError as err:
            raise invalid(
                "input_reference", f"Invalid 'input_reference': {err}", code="invalid_image"
            ) from err
        except StorageError as err:
            raise _storage_failure(err, "store") from err
    public_id = new_public_id()
    request_input = VideoRequest(
        prompt=body.prompt,
        model=body.model,
        size=body.size,
        seconds=body.seconds,
        reference=prepared.reference if prepared else None,
        poll_interval_seconds=svc.api.poll_interval_seconds,
        deadline_seconds=svc.api.deadline_seconds,
        # With webhooks configured, an event wakes the job; polling is only their safety net.
        webhook_fallback_seconds=svc.settings.webhooks.fallback_seconds,
        # A job past its deadline is watched this long for a late video (SALVAGE_WINDOW_SECONDS).
        salvage_window_seconds=svc.settings.spend.salvage_window_seconds,
        salvage_poll_seconds=svc.settings.spend.salvage_poll_seconds,
    )
    try:
        # What the workflow itself checks first; all of it is settled above, this keeps it that way.
        validate_workflow_input(workflow_id_for(public_id), request_input)
    except InvalidVideoRequest as err:
        raise invalid(err.param, err.message) from err
    fingerprint = body.fingerprint(prepared.digest if prepared else None)
    created = await run_in_threadpool(
        svc.store.create,
        NewJob(
            public_id=public_id,
            owner=owner,
            idempotency_key=key,
            fingerprint=fingerprint,
            prompt=body.prompt,
            model=body.model,
            size=body.size,
            seconds=body.seconds,
            has_reference=prepared is not None,
        ),
    )
    job = created.job
    if not created.new and (job.fingerprint != fingerprint or job.deleted_at is not None):
        reason = "was deleted" if job.fingerprint == fingerprint else "was used with a different request"
        raise ApiError(
            409,
            f"This Idempotency-Key {reason}; send a new key for a new video.",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    try:
        # Also on a replay: the first request may have stored the job and died before starting it.
        await svc.jobs.start(
            job.workflow_id,
            request_input,
            label=prepared.label if prepared else "none",
            # The key's own daily budget (API_KEY_BUDGET_USD_PER_DAY): named by the owner hash, never the key.
            budget_account=budget_account(job.owner),
            # OUTBOUND_WEBHOOK_URL: the job tells the application how it ended (the worker signs and sends).
            notify_as=job.id if svc.settings.outbound.enabled else None,
        )
    except Exception as err:
        started = await svc.jobs.exists(job.workflow_id)
        if not started:
            if started is False and key is None:
                # Nobody will replay this request; its retry (the SDKs retry a 503) is a new job.
                await run_in_threadpool(svc.store.forget, job.id)
            log.warning("could not start workflow %s: %s", job.workflow_id, type(err).__name__)
            raise unavailable("Temporal is unavailable; try again.") from err
    if created.new:
        return _answer(svc, request, JobView(job, None), State("queued", 0))
    view = await run_in_threadpool(svc.store.get, owner, job.id)
    if view is None:
        raise not_found("video")
    return _answer(svc, request, view, await _state(svc, view))


@router.get("/v1/videos")
async def list_videos(
    request: Request,
    svc: Svc,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
) -> JSONResponse:
    """The caller's videos, newest first by default; states come from the catalogue rows alone."""
    owner = _owner(svc, request)
    try:
        views, has_more = await run_in_threadpool(
            lambda: svc.store.page(owner, after=after, limit=limit, order=order)
        )
    except LookupError as err:
        raise invalid("after", f"No video found with id '{after}'.", code="not_found") from err
    base = svc.base_url(request)
    data = [video_object(v, state_of(v, None), video_url=_video_url(svc, v, base)) for v in views]
    body: dict[str, Any] = {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
    return JSONResponse(body)


@router.get("/v1/videos/{video_id}")
async def retrieve_video(video_id: str, request: Request, svc: Svc) -> JSONResponse:
    """The video object from the catalogue row and the workflow's query; never an upstream call."""
    owner = _owner(svc, request)
    view = await run_in_threadpool(svc.store.get, owner, video_id)
    if view is None:
        raise not_found("video")
    return _answer(svc, request, view, await _state(svc, view))


@router.get("/v1/videos/{video_id}/content")
async def video_content(
    video_id: str,
    request: Request,
    svc: Svc,
    variant: str = "video",
    token: str | None = None,
) -> Response:
    """The stored MP4 (or thumbnail, or spritesheet), honouring ``Range``.

    Authorised by the key that owns the job, or by the job's own token (the ``url`` it was given).
    """
    if variant not in VARIANT_TYPES:
        raise invalid(
            "variant", f"Invalid 'variant': {variant!r}. Expected 'video', 'thumbnail' or 'spritesheet'."
        )
    view = await run_in_threadpool(svc.store.get_by_token, video_id, token) if token else None
    if view is None:
        view = await run_in_threadpool(svc.store.get, _owner(svc, request), video_id)
    if view is None:
        raise not_found("video")
    row = view.row
    if row is None or not JobStatus(row.status).is_success:
        raise ApiError(
            404, "The video is not completed; its content is not available.", code="video_not_ready"
        )
    url = {"video": row.blob_url, "thumbnail": row.thumbnail_url, "spritesheet": row.spritesheet_url}[variant]
    pathname = svc.storage.pathname_of(url) if url else None
    if pathname is None:
        raise not_found(f"{variant} for this video")
    try:
        return await stream_object(
            svc.storage,
            pathname,
            content_type=VARIANT_TYPES[variant],
            filename=f"{view.job.id}.{VARIANT_EXTENSIONS[variant]}",
            range_header=request.headers.get("range"),
            etag=row.sha256 if variant == "video" else None,
        )
    except StorageError as err:
        raise _storage_failure(err, f"{variant} for this video") from err


@router.delete("/v1/videos/{video_id}")
async def delete_video(video_id: str, request: Request, svc: Svc) -> JSONResponse:
    """A finished video: its stored files are deleted and it disappears. A running one is cancelled
    through Temporal and stays listed, as ``failed`` with code ``cancelled`` (``deleted: false``);
    deleting it again once it has stopped removes it. A timed-out one still watched for a late
    video stops being watched, and is deleted."""
    owner = _owner(svc, request)
    view = await run_in_threadpool(svc.store.get, owner, video_id)
    if view is None:
        raise not_found("video")
    if view.row is not None and view.row.status == JobStatus.TIMED_OUT.value:
        # Timed out, and perhaps still watched for a late video: stop that too, so nothing is
        # stored for a video being deleted.
        try:
            await svc.jobs.cancel(view.job.workflow_id, CANCEL_REASON)
        except RPCError as err:
            raise unavailable("Temporal is unavailable; try again.") from err
    if not _finished_row(view):
        try:
            signalled = await svc.jobs.cancel(view.job.workflow_id, CANCEL_REASON)
        except RPCError as err:
            raise unavailable("Temporal is unavailable; try again.") from err
        if signalled:
            return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": False})
        # No running workflow: it finished meanwhile, or it never ran. Look again.
        view = await run_in_threadpool(svc.store.get, owner, video_id)
        if view is None:
            raise not_found("video")
    row = view.row
    if row is not None:
        for url in (row.blob_url, row.thumbnail_url, row.spritesheet_url):
            pathname = svc.storage.pathname_of(url) if url else None
            if pathname is None:
                continue
            try:
                await svc.storage.delete(pathname)
            except StorageError as err:
                if err.kind is not StorageFailure.OBJECT_MISSING:
                    raise _storage_failure(err, "video") from err
    await run_in_threadpool(svc.store.mark_deleted, owner, video_id)
    return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})
