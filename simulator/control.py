"""``/_sim`` control endpoints: fault rules, forced jobs, webhooks, hosted files, statistics, reset.

No auth: the simulator only listens on loopback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator import errors
from simulator.faults import FaultRule
from simulator.filehost import check_name
from simulator.lifecycle import JobStatus

if TYPE_CHECKING:
    from simulator.app import Simulator


class ControlApi:
    """Steering and introspection of a running simulator, for tests and demos.

    Args:
        simulator: The simulator it controls.
    """

    def __init__(self, simulator: Simulator) -> None:
        self.sim = simulator

    def register(self, app: web.Application) -> None:
        """Add the ``/_sim`` routes to ``app``."""
        app.router.add_get("/_sim/health", self.health)
        app.router.add_get("/_sim/faults", self.list_faults)
        app.router.add_post("/_sim/faults", self.add_fault)
        app.router.add_delete("/_sim/faults", self.clear_faults)
        app.router.add_post("/_sim/jobs/{video_id}", self.force_job)
        app.router.add_get("/_sim/webhooks", self.webhooks)
        app.router.add_post("/_sim/webhooks", self.configure_webhooks)
        app.router.add_put("/_sim/files/{name}", self.put_file)
        app.router.add_delete("/_sim/files/{name}", self.delete_file)
        app.router.add_get("/_sim/stats", self.stats)
        app.router.add_post("/_sim/reset", self.reset)

    async def health(self, request: web.Request) -> web.Response:
        """``GET /_sim/health`` → ``{"ok": true, "dialect": ...}``."""
        return web.json_response({"ok": True, "dialect": self.sim.config.dialect.value})

    async def list_faults(self, request: web.Request) -> web.Response:
        """``GET /_sim/faults`` → the active rules in order."""
        return web.json_response({"rules": [rule.to_json() for rule in self.sim.faults.rules]})

    async def add_fault(self, request: web.Request) -> web.Response:
        """``POST /_sim/faults`` with one rule; answers with all active rules."""
        try:
            rule = FaultRule.from_json(await _json(request))
        except ValueError as exc:
            raise errors.invalid(f"Invalid fault rule: {exc}") from exc
        self.sim.faults.add(rule)
        return await self.list_faults(request)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """``DELETE /_sim/faults`` drops every rule."""
        self.sim.faults.clear()
        return web.json_response({"rules": []})

    async def force_job(self, request: web.Request) -> web.Response:
        """``POST /_sim/jobs/{id}`` with ``{status?, error_code?, error_message?, expire?}``."""
        data = await _json(request)
        if not isinstance(data, dict):
            raise errors.invalid("Expected a JSON object.")
        unknown = set(data) - {"status", "error_code", "error_message", "expire"}
        if unknown:
            raise errors.invalid(f"Unknown fields: {sorted(unknown)}.")
        status: JobStatus | None = None
        if data.get("status") is not None:
            try:
                status = JobStatus(data["status"])
            except ValueError:
                raise errors.invalid("'status' must be 'completed' or 'failed'.", param="status") from None
        expire = data.get("expire", False)
        if not isinstance(expire, bool):
            raise errors.invalid("'expire' must be a boolean.", param="expire")
        if status is None and not expire:
            raise errors.invalid("Give 'status' and/or 'expire'.")
        for name in ("error_code", "error_message"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise errors.invalid(f"'{name}' must be a string.", param=name)
        video_id = request.match_info["video_id"]
        known = self.sim.store.find(video_id)
        # An ``early`` webhook rule: the event goes out now, the status follows ``lead`` seconds later.
        settle = self.sim.webhooks.early_lead(known) if known is not None and status is not None else 0.0
        job = self.sim.store.force(
            video_id,
            status=status,
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
            expire=expire,
            settle=settle,
        )
        self.sim.webhooks.check_now()
        return web.json_response(self.sim.video_json(request, job, job.observe(self.sim.clock())))

    async def webhooks(self, request: web.Request) -> web.Response:
        """``GET /_sim/webhooks`` → ``{url, secret_set, attempts, stats, events}``."""
        return web.json_response(self.sim.webhooks.describe())

    async def configure_webhooks(self, request: web.Request) -> web.Response:
        """``POST /_sim/webhooks`` with ``{url?, secret?, attempts?}`` (``url: null`` turns them off)."""
        data = await _json(request)
        if not isinstance(data, dict):
            raise errors.invalid("Expected a JSON object.")
        try:
            self.sim.webhooks.configure(data)
        except ValueError as exc:
            raise errors.invalid(f"Invalid webhook settings: {exc}") from exc
        return web.json_response(self.sim.webhooks.describe())

    async def put_file(self, request: web.Request) -> web.Response:
        """``PUT /_sim/files/{name}``: the body, served at ``/_files/{name}`` with the request's type."""
        name = request.match_info["name"]
        check_name(name)
        body = await request.read()
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        self.sim.files.put(name, body, content_type)
        url = f"{request.scheme}://{request.host}/_files/{name}"
        return web.json_response({"name": name, "size": len(body), "content_type": content_type, "url": url})

    async def delete_file(self, request: web.Request) -> web.Response:
        """``DELETE /_sim/files/{name}``."""
        self.sim.files.remove(request.match_info["name"])
        return web.json_response({"ok": True})

    async def stats(self, request: web.Request) -> web.Response:
        """``GET /_sim/stats``: dialect, time scale, request counts, jobs, creates, webhooks, file host."""
        sim = self.sim
        now = sim.clock()
        jobs = sim.store.all()
        payload: dict[str, Any] = {
            "dialect": sim.config.dialect.value,
            "time_scale": sim.config.time_scale,
            "requests": dict(sim.requests),
            "jobs": [sim.store.describe(job, sim.wire_status(job.observe(now))) for job in jobs],
            "creates": len(jobs),
            "faults": [rule.to_json() for rule in sim.faults.rules],
            "webhooks": sim.webhooks.stats(),
            "file_host": sim.files.stats(),
            "unrouted": sim.unrouted.to_json(),
        }
        return web.json_response(payload)

    async def reset(self, request: web.Request) -> web.Response:
        """``POST /_sim/reset`` forgets jobs, rules, counters, webhook events and hosted files.

        Rendered media stays cached and webhook settings stay as they are.
        """
        sim = self.sim
        for job in sim.store.all():
            sim.media.discard(job.id)
        sim.store.reset()
        sim.faults.reset()
        sim.webhooks.reset()
        sim.files.reset()
        sim.reset_counters()
        return web.json_response({"ok": True})


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.invalid("The body must be JSON.", code="invalid_json") from exc
