"""``/_emu/`` test controls: inject failures, delays and suspension; inspect objects and uploads.

No auth: these exist only in the emulator.
"""

from __future__ import annotations

from aiohttp import web

from simulator.blob import replies
from simulator.blob.state import EmulatorState
from simulator.blob.store import BlobRecord

CONTROL_PREFIX = "/_emu/"


class ControlApi:
    """Steering and introspection of one emulated store, for tests and benchmarks.

    Args:
        state: The emulator's state.
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = state.store

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``/_emu/<action>``: faults, delay, suspend, objects, uploads, sweep, health."""
        action = request.path.removeprefix(CONTROL_PREFIX).rstrip("/")
        method = request.method
        faults = self.state.faults
        if action == "faults" and method == "POST":
            spec = await request.json()
            count = spec.get("count")
            retry_after = spec.get("retry_after")
            faults.fail_next(
                int(spec["status"]),
                None if count is None else int(count),
                None if retry_after is None else float(retry_after),
            )
            return web.json_response({"ok": True})
        if action == "faults" and method == "DELETE":
            faults.fault = None
            return web.json_response({"ok": True})
        if action == "delay" and method == "POST":
            spec = await request.json()
            count = spec.get("count")
            faults.delay_next(float(spec["seconds"]), None if count is None else int(count))
            return web.json_response({"ok": True})
        if action == "delay" and method == "DELETE":
            faults.delay = None
            return web.json_response({"ok": True})
        if action == "suspend" and method in ("POST", "DELETE"):
            faults.suspended = method == "POST"
            return web.json_response({"ok": True, "suspended": faults.suspended})
        if action == "objects" and method == "GET":
            return web.json_response({"objects": [self._object_json(r) for r in self.store.records()]})
        if action == "uploads" and method == "GET":
            return web.json_response(
                {
                    "uploads": [
                        {"uploadId": u.upload_id, "pathname": u.pathname, "parts": sorted(u.parts)}
                        for u in self.store.uploads()
                    ]
                }
            )
        if action == "sweep" and method == "POST":
            spec = await request.json() if request.can_read_body else {}
            max_age = float(spec.get("max_age", self.state.mpu_ttl))
            return web.json_response({"swept": self.store.sweep(max_age)})
        if action == "health" and method == "GET":
            return web.json_response({"ok": True, "storeId": self.state.store_id})
        return web.json_response({"error": "unknown control"}, status=404)

    def _object_json(self, record: BlobRecord) -> dict[str, object]:
        return {
            "pathname": record.pathname,
            "size": record.size,
            "sha256": record.sha256,
            "contentType": record.content_type,
            "access": record.access,
            "url": replies.blob_url(self.state.store_id, record),
        }


__all__ = ["CONTROL_PREFIX", "ControlApi"]
