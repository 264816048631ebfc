"""The simulated Videos API: routes, authentication, fault handling and response shapes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError

from simulator import errors, hostile
from simulator.config import Dialect, SimConfig
from simulator.control import ControlApi
from simulator.errors import ApiError
from simulator.faults import API_ROUTES, FaultAction, FaultBook, FaultRule, LoseMode, Route, Target
from simulator.filehost import FileHost, redirect_url
from simulator.lifecycle import JobStatus, Snapshot
from simulator.media import MediaLibrary, Variant
from simulator.replies import (
    BytesReply,
    FileReply,
    JsonReply,
    Reply,
    error_response,
    render_json,
    reset_connection,
    send,
)
from simulator.state import DEFAULT_PAGE, MAX_PAGE, Job, JobStore
from simulator.validation import CreateSpec, RawBody, read_body, validate_create, validate_remix
from simulator.webhooks import WebhookDispatcher

log = logging.getLogger("simulator")

#: Reference images can be several megabytes; aiohttp's default limit is 1 MiB.
MAX_BODY = 64 * 1024 * 1024
#: Gateway download file names: the (percent-decoded) video id plus ``.mp4``.
_FILE_NAME = re.compile(r"^(.+)\.mp4$", re.DOTALL)

Operation = Callable[[], Awaitable[Reply]]

#: Paths whose routing errors are answered in OpenAI's error envelope.
_ENVELOPED = ("/v1/", "/files/", "/_sim/", "/_files/", "/_redirect")


@dataclass
class Unrouted:
    """Requests no route answered (404/405 from the router).

    A client that puts the id ``..`` into a path sends ``GET /v1/``: this is where that shows.

    Attributes:
        count: How many there were.
        recent: The latest ones as ``METHOD raw-path`` (at most 50).
    """

    count: int = 0
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=50))

    def record(self, request: web.Request) -> None:
        """Count one unrouted request."""
        self.count += 1
        self.recent.append(f"{request.method} {request.raw_path}")

    def to_json(self) -> dict[str, Any]:
        """``{"count", "recent"}`` for ``/_sim/stats``."""
        return {"count": self.count, "recent": list(self.recent)}


_UNROUTED = web.AppKey("unrouted", Unrouted)


class View(Enum):
    """Which answer a Video object is part of; per-job hostile markers apply to status and list only."""

    PLAIN = "plain"
    STATUS = "status"
    LIST = "list"


@web.middleware
async def _error_envelope(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer every API failure in OpenAI's envelope, including unknown paths and methods."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status in (404, 405) and isinstance(request.match_info, MatchInfoError):
            unrouted = request.app.get(_UNROUTED)
            if unrouted is not None:
                unrouted.record(request)
        if exc.status < 400 or not request.path.startswith(_ENVELOPED):
            raise
        return error_response(ApiError(exc.status, f"{exc.reason}: {request.method} {request.path}"))
    except ConnectionError:
        raise
    except Exception:
        # A simulator bug must still look like a server error to the client, not a crash.
        log.exception("unexpected error handling %s %s", request.method, request.path)
        return error_response(errors.for_status(500))


class Simulator:
    """One simulated service: jobs, fault rules, media cache, request counters, webhooks, file host.

    Args:
        config: Behaviour settings.
        clock: Source of the current time in seconds (wall clock by default).
    """

    def __init__(self, config: SimConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.store = JobStore(config, clock)
        self.faults = FaultBook(fail_rate=config.fail_rate, seed=config.seed)
        self.media = MediaLibrary(config.data_dir)
        self.webhooks = WebhookDispatcher(config, clock, self.faults)
        self.files = FileHost(self)
        self.unrouted = Unrouted()
        self.requests: dict[str, int] = {}
        self.reset_counters()
        # Signs gateway download URLs; per process, so URLs die with the simulator like real ones expire.
        self._url_secret = secrets.token_bytes(16)

    def build_app(self) -> web.Application:
        """The aiohttp application: ``/v1``, gateway ``/files``, the file host and ``/_sim`` control."""
        app = web.Application(middlewares=[_error_envelope], client_max_size=MAX_BODY)
        app.cleanup_ctx.append(self.webhooks.lifespan)
        app[_UNROUTED] = self.unrouted
        app.router.add_post("/v1/videos", self.create)
        app.router.add_get("/v1/videos", self.list_videos)
        app.router.add_get("/v1/videos/{video_id}", self.retrieve)
        app.router.add_delete("/v1/videos/{video_id}", self.delete)
        app.router.add_get("/v1/videos/{video_id}/content", self.content)
        app.router.add_post("/v1/videos/{video_id}/remix", self.remix)
        app.router.add_get("/files/{file_name}", self.file)
        self.files.register(app)
        ControlApi(self).register(app)
        return app

    def reset_counters(self) -> None:
        """Zero the per-route request counters of the Videos API and the unrouted log."""
        self.requests = {route.value: 0 for route in API_ROUTES}
        self.unrouted.count = 0
        self.unrouted.recent.clear()

    # ----- /v1 handlers -------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/videos``."""
        await self._admit(request, Route.CREATE)
        body = await read_body(request)
        target = Target(Route.CREATE, prompt=body.prompt_hint)
        return await self.respond(request, target, lambda: self._create(request, body))

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/videos/{id}``."""
        await self._admit(request, Route.RETRIEVE)
        video_id = request.match_info["video_id"]

        async def operation() -> Reply:
            return self._video_reply(request, self.store.get(video_id), view=View.STATUS)

        return await self.respond(request, self._target(Route.RETRIEVE, video_id), operation)

    async def list_videos(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/videos?after=&limit=&order=``."""
        await self._admit(request, Route.LIST)

        async def operation() -> Reply:
            return self._list(request)

        return await self.respond(request, Target(Route.LIST), operation)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /v1/videos/{id}``."""
        await self._admit(request, Route.DELETE)
        video_id = request.match_info["video_id"]

        async def operation() -> Reply:
            job = self.store.delete(video_id)
            self.media.discard(job.id)
            return JsonReply({"id": job.id, "deleted": True, "object": "video.deleted"})

        return await self.respond(request, self._target(Route.DELETE, video_id), operation)

    async def content(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/videos/{id}/content?variant=video|thumbnail|spritesheet``."""
        await self._admit(request, Route.CONTENT)
        video_id = request.match_info["video_id"]

        async def operation() -> Reply:
            job = self.store.get(video_id)
            raw_variant = request.query.get("variant", Variant.VIDEO.value)
            try:
                variant = Variant(raw_variant)
            except ValueError:
                raise errors.invalid(
                    f"Invalid value: '{raw_variant}'. Supported values are: 'video', 'thumbnail', "
                    "and 'spritesheet'.",
                    param="variant",
                ) from None
            if self.config.dialect is Dialect.GATEWAY and variant is not Variant.VIDEO:
                raise errors.not_found(f"Variant '{variant.value}' is not available for video '{job.id}'.")
            return await self._asset_reply(job, variant)

        variant = request.query.get("variant", Variant.VIDEO.value)
        return await self.respond(request, self._target(Route.CONTENT, video_id, variant), operation)

    async def remix(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/videos/{id}/remix``."""
        await self._admit(request, Route.REMIX)
        video_id = request.match_info["video_id"]
        body = await read_body(request)
        prompt = body.prompt_hint or self._target(Route.REMIX, video_id).prompt
        target = Target(Route.REMIX, prompt=prompt)
        return await self.respond(request, target, lambda: self._remix(request, video_id, body))

    async def file(self, request: web.Request) -> web.StreamResponse:
        """``GET /files/{id}.mp4?sig=``: the gateway dialect's unauthenticated download URL."""
        self.requests[Route.FILES.value] += 1
        match = _FILE_NAME.match(request.match_info["file_name"])
        if self.config.dialect is not Dialect.GATEWAY or match is None:
            raise errors.not_found("File not found.")
        video_id = match.group(1)
        if not hmac.compare_digest(request.query.get("sig", ""), self._signature(video_id)):
            raise ApiError(403, "Invalid or missing download signature.", code="invalid_signature")

        async def operation() -> Reply:
            return await self._asset_reply(self.store.get(video_id), Variant.VIDEO)

        target = self._target(Route.FILES, video_id, Variant.VIDEO.value)
        return await self.respond(request, target, operation)

    # ----- request pipeline ---------------------------------------------------------------------

    async def _admit(self, request: web.Request, route: Route) -> None:
        """Count, authenticate, then apply the CLI-wide slowness and random failures."""
        self.requests[route.value] += 1
        self._authenticate(request)
        if self.config.slow_ms > 0:
            await asyncio.sleep(self.config.slow_ms / 1000)
        if self.faults.random_failure():
            raise errors.for_status(self.config.fail_code)

    def _authenticate(self, request: web.Request) -> None:
        """Accept ``Authorization: Bearer <key>`` (OpenAI) or ``api-key: <key>`` (Azure)."""
        candidates: list[str] = []
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            candidates.append(token.strip())
        if request.headers.get("api-key", "").strip():
            candidates.append(request.headers["api-key"].strip())
        if not candidates:
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        expected = self.config.api_key
        if expected is not None and not any(hmac.compare_digest(c, expected) for c in candidates):
            shown = candidates[0][:6] + "*" * 4 + candidates[0][-4:] if len(candidates[0]) > 10 else "***"
            raise ApiError(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")

    async def respond(self, request: web.Request, target: Target, operation: Operation) -> web.StreamResponse:
        """Run an operation under the first fault rule matching ``target``, if any."""
        rule = self.faults.take(target)
        action = rule.action if rule is not None else None
        if rule is not None:
            if action is FaultAction.ERROR:
                return error_response(_fault_error(rule))
            if action is FaultAction.RATE_LIMIT:
                return error_response(errors.rate_limited(rule.retry_after))
            if action is FaultAction.RESET:
                return reset_connection(request)
            if action is FaultAction.SLOW and not rule.after:
                await asyncio.sleep(rule.delay)
        try:
            reply = await operation()
        except ApiError as error:
            reply = JsonReply.from_error(error)
        if rule is not None and action is FaultAction.LOSE_RESPONSE:
            # The work is done (a job may exist now); only the answer goes missing.
            if isinstance(reply, JsonReply) and reply.job_id is not None:
                job = self.store.find(reply.job_id)
                if job is not None:
                    job.response_lost = True
            if rule.mode is LoseMode.RESET:
                return reset_connection(request)
            return error_response(errors.for_status(rule.status))
        if rule is not None:
            reply = await self._hostile(request, reply, rule)
        pause = rule.delay if rule is not None and action is FaultAction.SLOW and rule.after else 0.0
        return await send(request, reply, truncate=action is FaultAction.TRUNCATE, pause=pause)

    async def _hostile(self, request: web.Request, reply: Reply, rule: FaultRule) -> Reply:
        """Apply a hostile-answer rule to a reply (other actions leave it alone)."""
        action = rule.action
        if action is FaultAction.GZIP_BOMB:
            size = rule.size or hostile.DEFAULT_BOMB_BYTES
            if isinstance(reply, JsonReply):
                tail, content_type = render_json(reply.payload), "application/json"
            else:
                tail, content_type = b"", reply.content_type
            status = reply.status if isinstance(reply, JsonReply | BytesReply) else 200
            body = await asyncio.to_thread(hostile.gzip_bomb, size, tail)
            headers = {**reply.headers, "Content-Encoding": hostile.BOMB_ENCODING}
            return BytesReply(body, content_type, status=status, headers=headers)
        if action is FaultAction.WRONG_MEDIA:
            body, true_type = hostile.wrong_media(rule.media)
            status = reply.status if isinstance(reply, JsonReply | BytesReply) else 200
            return BytesReply(body, rule.content_type or true_type, status=status)
        if not isinstance(reply, JsonReply):
            return reply
        if action is FaultAction.OVERSIZE:
            hostile.pad_json(reply.payload, rule.size or hostile.DEFAULT_OVERSIZE_BYTES)
            return reply
        if reply.status >= 400:
            return reply
        payload = reply.payload
        is_list = payload.get("object") == "list"
        videos: list[dict[str, Any]] = payload["data"] if is_list else [payload]
        for video in videos:
            if video.get("object") != "video":
                continue
            if action is FaultAction.HOSTILE_ID and rule.id_kind is not None:
                video["id"] = hostile.hostile_id(rule.id_kind)
            elif action is FaultAction.JUNK_FIELDS:
                hostile.junk_fields(video, rule.junk)
            elif action is FaultAction.OMIT_FIELDS:
                hostile.omit_fields(video, rule.fields)
            elif (
                action is FaultAction.DOWNLOAD_URL
                and rule.url is not None
                and video.get("status") == "completed"
            ):
                url = rule.url
                if rule.hops > 0:
                    url = redirect_url(f"{request.scheme}://{request.host}", rule.url, rule.hops)
                video.update(url=url, video_url=url, outputs={"video_url": url})
        if is_list and action is FaultAction.HOSTILE_ID and videos:
            payload["first_id"], payload["last_id"] = videos[0]["id"], videos[-1]["id"]
        return reply

    # ----- operations ---------------------------------------------------------------------------

    async def _create(self, request: web.Request, body: RawBody) -> Reply:
        key = request.headers.get("Idempotency-Key")
        replay = self._idempotent_replay(request, key)
        if replay is not None:
            return replay
        spec = validate_create(body, self.config.dialect)
        job = self.store.create(spec, idempotency_key=key)
        self.webhooks.watch(job)
        log.info("created %r (%s, %s, %ss)", job.id, spec.model, spec.size, spec.seconds)
        return self._video_reply(request, job, created=True)

    async def _remix(self, request: web.Request, video_id: str, body: RawBody) -> Reply:
        source = self.store.get(video_id)
        prompt = validate_remix(body, self.config.dialect)
        status = source.observe(self.clock()).status
        if status is not JobStatus.COMPLETED:
            raise errors.invalid(
                f"Video '{video_id}' is {status.value}; only completed videos can be remixed.",
                param="video_id",
                code="invalid_request",
            )
        key = request.headers.get("Idempotency-Key")
        replay = self._idempotent_replay(request, key)
        if replay is not None:
            return replay
        spec = CreateSpec(
            prompt, source.spec.model, source.spec.seconds, source.spec.width, source.spec.height
        )
        job = self.store.create(spec, idempotency_key=key, remixed_from=source.id)
        self.webhooks.watch(job)
        return self._video_reply(request, job, created=True)

    def _idempotent_replay(self, request: web.Request, key: str | None) -> Reply | None:
        # OpenAI has no idempotency for videos (it only records the key); gateways honour it.
        if self.config.dialect is not Dialect.GATEWAY or not key:
            return None
        existing = self.store.by_idempotency_key(key)
        return self._video_reply(request, existing) if existing is not None else None

    def _list(self, request: web.Request) -> Reply:
        query = request.query
        raw_limit = query.get("limit", str(DEFAULT_PAGE))
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_PAGE:
            raise errors.invalid(
                f"Invalid 'limit': {raw_limit!r}. Expected an integer from 1 to {MAX_PAGE}.", param="limit"
            )
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise errors.invalid(
                f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.", param="order"
            )
        jobs, has_more = self.store.page(
            after=query.get("after") or None, limit=limit, descending=order == "desc"
        )
        now = self.clock()
        data = [self.video_json(request, job, job.observe(now), view=View.LIST) for job in jobs]
        return JsonReply(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": has_more,
            }
        )

    async def _asset_reply(self, job: Job, variant: Variant) -> Reply:
        snapshot = job.observe(self.clock())
        if snapshot.status is JobStatus.FAILED:
            raise errors.not_found(f"Video '{job.id}' failed; it has no content.")
        if snapshot.status is not JobStatus.COMPLETED:
            raise errors.not_found(
                f"Video '{job.id}' is not ready yet (status: {self.wire_status(snapshot)}); "
                "content is available once it has completed."
            )
        if snapshot.expired:
            raise errors.not_found(f"Video content for '{job.id}' has expired and is no longer available.")
        spec = job.spec
        path = await self.media.asset(variant, job.id, spec.width, spec.height, spec.seconds)
        return FileReply(path, variant.content_type)

    # ----- shapes -------------------------------------------------------------------------------

    def wire_status(self, snapshot: Snapshot) -> str:
        """The status as this dialect reports it (gateways say ``processing``)."""
        if self.config.dialect is Dialect.GATEWAY and snapshot.status is JobStatus.IN_PROGRESS:
            return "processing"
        return snapshot.status.value

    def video_json(
        self, request: web.Request, job: Job, snapshot: Snapshot, *, view: View = View.PLAIN
    ) -> dict[str, Any]:
        """The Video object, exactly as the SDK types it (plus download URLs for gateways).

        In status (``view`` STATUS) and list (LIST) answers a job's ``[sim:junk]`` marker garbles its
        numbers; in list answers ``[sim:omit]`` leaves fields out.
        """
        spec = job.spec
        error = None
        if snapshot.status is JobStatus.FAILED:
            error = {"code": snapshot.error_code, "message": snapshot.error_message}
        video: dict[str, Any] = {
            "id": job.id,
            "object": "video",
            "created_at": int(job.created),
            "completed_at": _timestamp(snapshot.completed_at),
            "expires_at": _timestamp(snapshot.expires_at),
            "model": spec.model,
            "progress": snapshot.progress,
            "prompt": spec.prompt,
            "remixed_from_video_id": job.remixed_from,
            "seconds": str(spec.seconds),
            "size": spec.size,
            "status": self.wire_status(snapshot),
            "error": error,
        }
        if self.config.dialect is Dialect.GATEWAY and snapshot.status is JobStatus.COMPLETED:
            url = self._file_url(request, job.id)
            video.update(url=url, video_url=url, outputs={"video_url": url})
        markers = job.markers
        if view is not View.PLAIN and markers.junk is not None:
            hostile.junk_fields(video, markers.junk)
        if view is View.LIST and markers.omit:
            hostile.omit_fields(video, markers.omit)
        return video

    def _video_reply(
        self, request: web.Request, job: Job, *, created: bool = False, view: View = View.PLAIN
    ) -> JsonReply:
        snapshot = job.observe(self.clock())
        return JsonReply(
            self.video_json(request, job, snapshot, view=view),
            headers={"openai-poll-after-ms": str(self.config.poll_after_ms)},
            job_id=job.id if created else None,
        )

    def _target(self, route: Route, video_id: str, variant: str | None = None) -> Target:
        """What a request about ``video_id`` targets: the job's prompt and current status."""
        job = self.store.find(video_id)
        if job is None:
            return Target(route, variant=variant)
        status = job.observe(self.clock()).status.value
        return Target(route, prompt=job.spec.prompt, variant=variant, status=status)

    def _signature(self, video_id: str) -> str:
        return hmac.new(
            self._url_secret, video_id.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()[:32]

    def _file_url(self, request: web.Request, video_id: str) -> str:
        # Quoted as one segment, so a hostile id still makes a well-formed URL.
        name = quote(video_id, safe="")
        return f"{request.scheme}://{request.host}/files/{name}.mp4?sig={self._signature(video_id)}"


def _fault_error(rule: FaultRule) -> ApiError:
    """The error an ``error`` rule answers with, poisoned fields included."""
    error = errors.for_status(rule.status)
    if rule.error_kind is not None:
        error.code, error.message = hostile.poisoned_error(rule.error_kind)
    if rule.error_code is not None:
        error.code = rule.error_code
    if rule.error_message is not None:
        error.message = rule.error_message
    return error


def _timestamp(value: float | None) -> int | None:
    return None if value is None else int(value)
