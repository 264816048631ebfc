"""Helpers for the ``api`` tests: the ``python -m api`` process, and clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
from api_process import ApiProcess

from simulator.testing import RunningSimulator
from sora_temporal.db import make_engine
from sora_temporal.schema import upgrade
from support import Deployment

API_KEY_A = "sk-api-test-tenant-a"
API_KEY_B = "sk-api-test-tenant-b"
# Jobs started through the API in tests poll upstream every second (the shortest allowed), not every 5 s.
FAST_POLL_SECONDS = "1"


@dataclass
class ApiStack:
    """A deployment (worker processes), the simulator behind it and the ``api`` process in front."""

    deployment: Deployment
    sim: RunningSimulator
    api: ApiProcess

    def client(self, key: str = API_KEY_A, **options: object) -> openai.OpenAI:
        """The official Python SDK pointed at the API."""
        return openai.OpenAI(base_url=self.api.base_url, api_key=key, **options)  # type: ignore[arg-type]

    def http(self, key: str | None = API_KEY_A) -> httpx.Client:
        """A plain HTTP client (with the key, unless ``None``)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.api.root_url, headers=headers, timeout=30)

    def stored_bytes(self, workflow_id: str, variant: str = "video") -> bytes:
        """What storage holds for a job, read straight from the storage directory."""
        catalog = self.deployment.catalog()
        try:
            row = catalog.get(workflow_id)
        finally:
            catalog.engine.dispose()
        assert row is not None, f"no catalogue row for {workflow_id}"
        url = {"video": row.blob_url, "thumbnail": row.thumbnail_url, "spritesheet": row.spritesheet_url}[
            variant
        ]
        assert url is not None and url.startswith("file://"), url
        return Path(url.removeprefix("file://")).read_bytes()


def migrate(database_url: str) -> None:
    """Bring a catalogue to the newest schema revision, as ``make migrate`` does before a deployment."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def api_env(deployment: Deployment, **extra: str) -> dict[str, str]:
    """The deployment's environment plus the API's: two tenants' keys and fast polling."""
    return {
        **deployment.env,
        "API_KEYS": f"{API_KEY_A},{API_KEY_B}",
        "API_POLL_INTERVAL_SECONDS": FAST_POLL_SECONDS,
        **extra,
    }


@contextmanager
def running_api(deployment: Deployment, log_path: Path, **extra_env: str) -> Iterator[ApiProcess]:
    """An ``api`` process in front of ``deployment``, stopped afterwards."""
    api = ApiProcess(api_env(deployment, **extra_env), log_path).start()
    try:
        yield api
    finally:
        api.stop()


@contextmanager
def running_stack(
    temporal_address: str, sim: RunningSimulator, root: Path, **extra_env: str
) -> Iterator[ApiStack]:
    """A worker and an ``api`` process on a SQLite catalogue under ``root``, in front of ``sim``.

    ``extra_env`` goes to both (e.g. the webhook settings they share).
    """
    database_url = f"sqlite:///{root / 'sora.db'}"
    migrate(database_url)
    deployment = Deployment.configure(temporal_address, sim, root, database_url, **extra_env)
    deployment.start_worker()
    try:
        with running_api(deployment, root / "api.log") as api:
            yield ApiStack(deployment, sim, api)
    finally:
        deployment.stop_workers()


def workflow_id_of(video_id: str) -> str:
    """The workflow id the API gives a job (the same hex as its public id)."""
    return "api-" + video_id.removeprefix("video_")
