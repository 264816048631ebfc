"""Prometheus metrics: every metric the service defines, and the endpoint that serves them.

With ``METRICS_PORT`` set, the worker serves ``http://METRICS_HOST:METRICS_PORT/metrics``: the
service's own metrics (below) followed by the Temporal SDK's (``temporal_*``: task slots, polls,
activity and workflow latencies, failures), which the SDK's runtime exposes on a loopback port of
its own and this endpoint passes through, so one scrape gets both.

The service's metrics:

* ``sora_jobs{status}`` and ``sora_jobs_in_flight``: the catalogue, counted at scrape time (the same
  figures from every worker sharing a database).
* ``sora_jobs_submitted_total{model}`` and ``sora_video_seconds_submitted_total{model}``: Sora jobs
  this worker created (adopted ones are not counted again); seconds of video are what is billed, so
  spend is these times the model's price.
* ``sora_jobs_finished_total{status}``: terminal states this worker recorded.
* ``sora_status_check_seconds{outcome}``: latency of the Videos API status checks.
* ``sora_stored_bytes_total{backend,variant}``: bytes this worker stored.
* ``sora_estimated_spend_usd_total{model}``: the estimated cost (``sora_temporal.pricing``) of the
  Sora jobs this worker created; ``sora_budget_refusals_total{budget}``: jobs a daily budget refused
  (``global`` or ``account``) before anything was sent. Reserved spend per day is in the catalogue
  (``starter.py spend``).
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from sora_temporal.db import VideoCatalog, VideoRow
from sora_temporal.types import JobStatus

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A scrape waits this long for the SDK's figures before serving the service's own without them.
TEMPORAL_SCRAPE_TIMEOUT_SECONDS = 2.0

REGISTRY = CollectorRegistry(auto_describe=True)

JOBS_SUBMITTED = Counter(
    "sora_jobs_submitted", "Sora jobs this worker created.", ["model"], registry=REGISTRY
)
VIDEO_SECONDS_SUBMITTED = Counter(
    "sora_video_seconds_submitted",
    "Seconds of video in the Sora jobs this worker created (what is billed).",
    ["model"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "sora_jobs_finished", "Terminal states this worker recorded.", ["status"], registry=REGISTRY
)
STATUS_CHECK_SECONDS = Histogram(
    "sora_status_check_seconds",
    "Latency of one status check against the Videos API.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
ESTIMATED_SPEND_USD = Counter(
    "sora_estimated_spend_usd",
    "Estimated cost in USD of the Sora jobs this worker created.",
    ["model"],
    registry=REGISTRY,
)
BUDGET_REFUSALS = Counter(
    "sora_budget_refusals",
    "Jobs a daily budget refused before anything was sent.",
    ["budget"],
    registry=REGISTRY,
)
STORED_BYTES = Counter(
    "sora_stored_bytes", "Bytes this worker stored.", ["backend", "variant"], registry=REGISTRY
)


class CatalogueCollector(Collector):
    """``sora_jobs{status}`` and ``sora_jobs_in_flight``, counted in the catalogue at scrape time."""

    def __init__(self, catalog: VideoCatalog) -> None:
        self._catalog = catalog

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        try:
            with self._catalog.engine.connect() as connection:
                rows = connection.execute(select(VideoRow.status, func.count()).group_by(VideoRow.status))
                counts = {str(status): int(count) for status, count in rows}
        except Exception:  # a scrape must never fail because the database blinked
            log.warning("could not count the catalogue's jobs for /metrics", exc_info=True)
            return
        by_status = GaugeMetricFamily("sora_jobs", "Jobs in the catalogue by status.", labels=["status"])
        for status in JobStatus:
            by_status.add_metric([status.value], counts.get(status.value, 0))
        yield by_status
        in_flight = sum(n for status, n in counts.items() if status not in _TERMINAL)
        yield GaugeMetricFamily(
            "sora_jobs_in_flight", "Jobs in the catalogue not yet in a terminal state.", value=in_flight
        )


_TERMINAL = frozenset(s.value for s in JobStatus if s.is_terminal)


def free_loopback_port() -> int:
    """A loopback port nobody listens on right now (for the SDK's own endpoint)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temporal_runtime(metrics_port: int | None) -> Runtime:
    """The worker's Temporal runtime; pass it to ``Client.connect``.

    The SDK core's own log lines (warnings and errors) go through Python logging, so they share the
    worker's format (one JSON object per line with ``LOG_FORMAT=json``) instead of the console. With
    ``metrics_port``, the SDK's metrics are exposed on ``127.0.0.1:metrics_port``.
    """
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=(
                PrometheusConfig(bind_address=f"127.0.0.1:{metrics_port}", durations_as_seconds=True)
                if metrics_port
                else None
            ),
        )
    )


@dataclass
class MetricsServer:
    """The ``/metrics`` endpoint, served from a background thread.

    Attributes:
        url: Where to scrape.
    """

    url: str
    _server: ThreadingHTTPServer
    _thread: threading.Thread

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    host: str, port: int, *, catalog: VideoCatalog | None, temporal_metrics_url: str | None
) -> MetricsServer:
    """Serve the service's metrics (and the SDK's from ``temporal_metrics_url``) on ``host:port``.

    Raises:
        OSError: The port cannot be bound.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Combined(catalog))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = generate_latest(registry) + _temporal_text(temporal_metrics_url)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per scrape would drown the worker's log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    bound_port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return MetricsServer(url=f"http://{shown}:{bound_port}/metrics", _server=server, _thread=thread)


class _Combined(Collector):
    """The module's metrics plus, when there is a catalogue, the catalogue's counts."""

    def __init__(self, catalog: VideoCatalog | None) -> None:
        self._catalogue = CatalogueCollector(catalog) if catalog is not None else None

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        if self._catalogue is not None:
            yield from self._catalogue.collect()


def _temporal_text(url: str | None) -> bytes:
    if url is None:
        return b""
    try:
        with urllib.request.urlopen(url, timeout=TEMPORAL_SCRAPE_TIMEOUT_SECONDS) as answer:
            text: bytes = answer.read()
    except OSError as err:
        return f"# the Temporal SDK's metrics are unavailable: {err}\n".encode()
    return text if text.endswith(b"\n") or not text else text + b"\n"
