"""``python -m api --host H --port P``: serve the Videos API on uvicorn.

Prints ``api ready on http://H:P`` on stdout once it accepts requests (with the real port when
``--port 0`` asked for any free one), so process helpers can wait for that line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn

from api.app import create_app
from sora_temporal import logs
from sora_temporal.settings import Settings

READY = "api ready on "


class _Server(uvicorn.Server):
    """uvicorn's server, announcing readiness once the app started and the socket listens."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit or not self.servers:
            return
        host = self.config.host
        port = self.servers[0].sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        print(f"{READY}http://{shown}:{port}", flush=True)


async def serve(host: str, port: int, settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; returns the exit code (3 when start-up failed).

    Raises:
        ValueError: No API key is configured.
    """
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        lifespan="on",
        # Content URLs carry per-video tokens in their query strings: no access log.
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )
    server = _Server(config)
    await server.serve()
    return 0 if server.started else 3


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m api", description="Serve the Videos API over durable jobs."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as err:
        print(f"error: bad configuration: {err}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        return asyncio.run(serve(args.host, args.port, settings))
    except ValueError as err:  # no key configured: the API never runs open
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    code = main()
    # The Temporal SDK's native bridge can crash while the interpreter tears down
    # (temporalio/sdk-python#300); everything is closed by now, so leave at once, as the starter does.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
