"""Command line: ``python -m simulator --host 127.0.0.1 --port 0 [options]``.

Prints exactly one line, ``simulator listening on http://HOST:PORT``, to stdout once listening;
all logging goes to stderr. ``--help`` lists the prompt markers and fault rules.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from simulator.config import DEFAULT_WEBHOOK_ATTEMPTS, Dialect, SimConfig
from simulator.server import is_loopback, serve

#: Environment variable read when ``--webhook-secret`` is not given (the receiver's name for it).
WEBHOOK_SECRET_ENV = "OPENAI_WEBHOOK_SECRET"

_EPILOG = """\
prompt markers (steer one job; put them anywhere in the prompt):
  [sim:fail] [sim:fail:CODE]   the job fails (with CODE)
  [sim:never]                  the job never finishes
  [sim:expire]                 its content is expired as soon as it completes
  [sim:duration=SECONDS]       realistic seconds until it ends (before --time-scale)
  [sim:id=KIND]                hostile id: dot, dotdot, long (2 KB), slash, query, space,
                               unicode, or raw:<literal id>
  [sim:junk] [sim:junk=garbage]  status and list answers carry created_at "1e999", progress 1e999
                               (overflow, the default) or non-numeric junk (garbage)
  [sim:omit] [sim:omit=F1,F2]  its list entries leave out prompt/model/size/seconds/created_at
  [sim:error=long|nul]         it fails with a 200-char code and 100 KB message, or NULs in both

fault rules (POST /_sim/faults {"route", "action", ...}; count, match_prompt, match_variant):
  routes: create retrieve list delete content remix files reference webhook any
  transport: error(status, error_code, error_message, error_kind=long|nul) rate_limit(retry_after)
             reset slow(delay, after) lose_response(status, mode=error|reset) truncate
  hostile:   gzip_bomb(size) oversize(size) hostile_id(id_kind) junk_fields(junk)
             omit_fields(fields) wrong_media(media=html|png|jpeg|webp, content_type)
             download_url(url, hops)
  webhook:   delay(delay) duplicate(times, spacing) drop bad_signature expired early(lead)

control API: /_sim/health /_sim/faults /_sim/jobs/{id} /_sim/webhooks /_sim/files/{name}
             /_sim/stats /_sim/reset; file host: /_files/{name} /_redirect?to=URL&hops=N
See docs/simulator.md.
"""


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Simulated OpenAI Videos (Sora) API for local runs and tests.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--dialect", choices=[d.value for d in Dialect], default=Dialect.OPENAI.value)
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiply every realistic duration (0.01 = 100x faster)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for jitter and random failures")
    parser.add_argument("--api-key", default=None, help="the only accepted key (default: any non-empty key)")
    parser.add_argument("--data-dir", type=Path, default=None, help="media cache (default: a temp dir)")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="probability a /v1 request fails")
    parser.add_argument("--fail-code", type=int, default=500, help="HTTP status of random failures")
    parser.add_argument("--slow-ms", type=float, default=0.0, help="delay added to every /v1 response")
    parser.add_argument(
        "--expire-after",
        type=float,
        default=None,
        help="content lifetime in realistic seconds (default 3600)",
    )
    parser.add_argument("--never-finish", action="store_true", help="every job stays in progress forever")
    parser.add_argument(
        "--webhook-url",
        default=None,
        help="loopback URL that receives signed video.completed/video.failed events (default: none)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=None,
        help=f"Standard Webhooks secret whsec_<base64> to sign with (default: ${WEBHOOK_SECRET_ENV} "
        "when --webhook-url is given)",
    )
    parser.add_argument(
        "--webhook-attempts",
        type=int,
        default=DEFAULT_WEBHOOK_ATTEMPTS,
        help=f"delivery attempts per event, retried with backoff (default {DEFAULT_WEBHOOK_ATTEMPTS})",
    )
    parser.add_argument("--log-level", default="WARNING", help="stderr logging level (default WARNING)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve until interrupted, clean up a temporary data dir.

    Returns:
        The process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(levelname)s %(message)s")
    if not is_loopback(args.host):
        parser.error(f"--host must be a loopback address, not {args.host!r}")
    webhook_secret: str | None = args.webhook_secret
    if webhook_secret is None and args.webhook_url is not None:
        webhook_secret = os.environ.get(WEBHOOK_SECRET_ENV) or None
    owned_dir = args.data_dir is None
    data_dir: Path = Path(tempfile.mkdtemp(prefix="sora-sim-")) if owned_dir else args.data_dir
    try:
        config = SimConfig(
            dialect=Dialect(args.dialect),
            time_scale=args.time_scale,
            seed=args.seed,
            api_key=args.api_key,
            data_dir=data_dir,
            fail_rate=args.fail_rate,
            fail_code=args.fail_code,
            slow_ms=args.slow_ms,
            expire_after=args.expire_after,
            never_finish=args.never_finish,
            webhook_url=args.webhook_url,
            webhook_secret=webhook_secret,
            webhook_attempts=args.webhook_attempts,
        )
    except ValueError as exc:
        if owned_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        parser.error(str(exc))

    def announce(url: str) -> None:
        print(f"simulator listening on {url}", flush=True)

    try:
        asyncio.run(serve(config, args.host, args.port, announce))
    except KeyboardInterrupt:
        pass
    finally:
        if owned_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
