"""Run the Vercel Blob emulator: ``python -m simulator.blob --port 0 --root DIR [--token TOKEN]``.

Once listening it prints exactly one line to stdout, ``blob emulator listening on http://HOST:PORT``
(port 0 picks a free port). Point the SDK at it with ``VERCEL_BLOB_API_URL=http://HOST:PORT/api/blob``
and ``BLOB_READ_WRITE_TOKEN=<token>``; without ``--token`` a fresh one is made up and written to
stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.log import access_logger

from simulator.blob.app import create_app
from simulator.blob.tokens import new_token, store_id_from_token


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator.blob", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--root", type=Path, required=True, help="directory that holds the objects")
    parser.add_argument("--token", help="vercel_blob_rw_<storeId>_<secret>; made up when omitted")
    parser.add_argument(
        "--mpu-ttl",
        type=float,
        default=24 * 3600,
        help="seconds an unfinished multipart upload may sit idle before its parts are deleted",
    )
    parser.add_argument("--sweep-interval", type=float, default=60.0, help="seconds between those sweeps")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if args.token is not None:
        try:
            store_id_from_token(args.token)
        except ValueError as err:
            parser.error(str(err))
    return args


async def _serve(args: argparse.Namespace) -> None:
    token = args.token
    if token is None:
        token = new_token()
        print(f"blob emulator token: {token}", file=sys.stderr, flush=True)
    app = create_app(args.root, token, mpu_ttl=args.mpu_ttl, sweep_interval=args.sweep_interval)
    runner = web.AppRunner(app, access_log=access_logger if args.access_log else None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"blob emulator listening on http://{shown}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until SIGINT/SIGTERM."""
    args = _parse(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
