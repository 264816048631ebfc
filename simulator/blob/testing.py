"""Run the Blob emulator in a subprocess for tests and benchmarks.

    with start_blob_emulator(tmp_path / "blob") as emulator:
        storage = VercelBlobStorage(
            emulator.token, api_url=emulator.api_url, httpx_client_factory=emulator.httpx_client_factory()
        )
        ...
        emulator.fail_next(503, count=2, retry_after=7)

API calls reach the emulator through ``api_url`` (``VERCEL_BLOB_API_URL``); reading an object
through its blob URL needs a client from :meth:`RunningBlobEmulator.httpx_client_factory` (or
:meth:`RunningBlobEmulator.transport`), which routes ``*.blob.vercel-storage.com`` here. A worker
only uploads and deletes, so :meth:`RunningBlobEmulator.env` is all it needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from simulator.blob.tokens import new_token, store_id_from_token
from simulator.blob.transport import LoopbackBlobTransport, loopback_client_factory
from simulator.process import start_ready, terminate

_READY_PREFIX = "blob emulator listening on "
STARTUP_TIMEOUT = 15.0


@dataclass(frozen=True)
class EmulatedObject:
    """One object as the emulator holds it."""

    pathname: str
    size: int
    sha256: str
    content_type: str
    access: str
    url: str


class RunningBlobEmulator:
    """Handle on a running emulator process.

    Attributes:
        base_url: ``http://127.0.0.1:<port>``.
        api_url: The value for ``VERCEL_BLOB_API_URL``.
        token: The store's read-write token (``BLOB_READ_WRITE_TOKEN``).
        store_id: The store id inside the token.
        root: Where the emulator keeps its files.
    """

    def __init__(self, base_url: str, token: str, root: Path, process: subprocess.Popen[bytes]) -> None:
        self.base_url = base_url
        self.api_url = f"{base_url}/api/blob"
        self.token = token
        self.store_id = store_id_from_token(token)
        self.root = root
        self.process = process

    def env(self) -> dict[str, str]:
        """Environment variables that point the SDK (and our storage factory) here.

        Loopback is added to ``NO_PROXY``, so a proxy set in the developer's shell cannot take
        the API calls away from the emulator.
        """
        ambient = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
        no_proxy = ",".join(filter(None, [ambient, "127.0.0.1", "localhost", "::1"]))
        return {
            "VERCEL_BLOB_API_URL": self.api_url,
            "BLOB_READ_WRITE_TOKEN": self.token,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    def _control(self, method: str, action: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}/_emu/{action}",
            data=data,
            method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def objects(self) -> list[EmulatedObject]:
        """Every stored object, sorted by pathname."""
        return [
            EmulatedObject(
                pathname=o["pathname"],
                size=o["size"],
                sha256=o["sha256"],
                content_type=o["contentType"],
                access=o["access"],
                url=o["url"],
            )
            for o in self._control("GET", "objects")["objects"]
        ]

    def uploads(self) -> list[dict[str, Any]]:
        """Unfinished multipart uploads (``uploadId``, ``pathname``, ``parts``)."""
        return list(self._control("GET", "uploads")["uploads"])

    def sweep(self, max_age: float = 0.0) -> int:
        """Delete unfinished uploads idle for more than ``max_age`` seconds now; returns how many."""
        return int(self._control("POST", "sweep", {"max_age": max_age})["swept"])

    def fail_next(self, status: int, count: int | None, retry_after: float | None = None) -> None:
        """Answer the next ``count`` API calls (all, if ``None``) with ``status``.

        The error code follows the status as the service's would (429 ``rate_limited``, 503
        ``service_unavailable``, ...), with a ``Retry-After`` header when ``retry_after`` is given.
        Blob URL downloads are not affected.
        """
        self._control("POST", "faults", {"status": status, "count": count, "retry_after": retry_after})

    def clear_faults(self) -> None:
        """Stop injecting failures and delays."""
        self._control("DELETE", "faults")
        self._control("DELETE", "delay")

    def delay_next(self, seconds: float, count: int | None) -> None:
        """Hold the answers to the next ``count`` API calls (all, if ``None``) for ``seconds``.

        The delay comes after the request body has been read, like a service busy finishing work.
        """
        self._control("POST", "delay", {"seconds": seconds, "count": count})

    def suspend(self) -> None:
        """Make the store answer every API call as suspended."""
        self._control("POST", "suspend")

    def resume(self) -> None:
        """Undo :meth:`suspend`."""
        self._control("DELETE", "suspend")

    def transport(self) -> httpx2.AsyncBaseTransport:
        """An httpx2 transport that sends ``*.blob.vercel-storage.com`` requests here."""
        return LoopbackBlobTransport(self.base_url)

    def httpx_client_factory(self) -> Callable[[], httpx2.AsyncClient]:
        """A factory for ``VercelBlobStorage(httpx_client_factory=...)`` (or the SDK's session) routed here."""
        return loopback_client_factory(self.base_url)


@contextlib.contextmanager
def start_blob_emulator(
    root: Path, token: str | None = None, *, extra_args: list[str] | None = None
) -> Iterator[RunningBlobEmulator]:
    """Start ``python -m simulator.blob`` on a free loopback port; stop it on exit.

    Args:
        root: Directory for the emulator's files.
        token: The store's token; a fresh one when ``None``.
        extra_args: More command-line options, e.g. ``["--mpu-ttl", "5"]``.

    Raises:
        RuntimeError: The emulator did not report it was listening within 15 seconds.
    """
    token = token or new_token()
    root.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "simulator.blob",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--root",
        str(root),
        "--token",
        token,
        *(extra_args or []),
    ]
    process, line = start_ready(command, ready=_READY_PREFIX, timeout=STARTUP_TIMEOUT)
    try:
        base_url = line.removeprefix(_READY_PREFIX).strip()
        yield RunningBlobEmulator(base_url, token, root, process)
    finally:
        terminate(process)


__all__ = ["EmulatedObject", "RunningBlobEmulator", "start_blob_emulator"]
