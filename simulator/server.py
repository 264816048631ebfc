"""Running the simulator's HTTP server until told to stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from simulator.app import Simulator
from simulator.config import SimConfig, is_loopback

__all__ = ["is_loopback", "root_url", "serve"]


def root_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` with IPv6 literals bracketed."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


async def serve(config: SimConfig, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT/SIGTERM.

    Args:
        config: Simulator settings.
        host: Loopback address to bind.
        port: Port to bind; 0 picks a free one.
        on_ready: Called with the root URL once the socket is listening.

    Raises:
        ValueError: When ``host`` is not a loopback address.
    """
    if not is_loopback(host):
        raise ValueError(f"the simulator only serves on loopback, not {host!r}")
    simulator = Simulator(config)
    runner = web.AppRunner(simulator.build_app(), access_log=None, handle_signals=False)
    await runner.setup()
    # "localhost" may resolve to two addresses, which port 0 would bind to two different ports.
    bind = "127.0.0.1" if host == "localhost" else host.strip("[]")
    site = web.TCPSite(runner, bind, port)
    await site.start()
    bound_port = _bound_port(runner, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        on_ready(root_url(host.strip("[]"), bound_port))
        await stop.wait()
    finally:
        await runner.cleanup()


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
