"""Settings read from the worker's and starter's environment.

Only processes read these; workflow code never does (it must be deterministic), and secrets never
leave the worker: they are not copied into workflow inputs, results, memos or search attributes.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///data/sora.db"
DEFAULT_TASK_QUEUE = "sora-videos"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError as err:
        raise ValueError(f"{name} must be a number, got {raw!r}") from err


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, float(default)))


@dataclass(frozen=True)
class Settings:
    """Process configuration; see README.md for every variable."""

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    database_url: str = DEFAULT_DATABASE_URL
    download_dir: Path = Path("data/downloads")
    max_reference_image_bytes: int = 20 * 1024 * 1024
    reference_image_timeout_seconds: float = 20.0
    host_task_queue: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings, with defaults that run everything locally with no keys."""
        env = os.environ if env is None else env
        task_queue = env.get("TEMPORAL_TASK_QUEUE") or DEFAULT_TASK_QUEUE
        return cls(
            temporal_address=env.get("TEMPORAL_ADDRESS") or "localhost:7233",
            temporal_namespace=env.get("TEMPORAL_NAMESPACE") or "default",
            task_queue=task_queue,
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            download_dir=Path(env.get("DOWNLOAD_DIR") or "data/downloads"),
            max_reference_image_bytes=_int(env, "REFERENCE_IMAGE_MAX_BYTES", 20 * 1024 * 1024),
            reference_image_timeout_seconds=_float(env, "REFERENCE_IMAGE_TIMEOUT_SECONDS", 20.0),
            # Unique per worker process: the files a download leaves on this host can only be
            # uploaded by this process, so upload is routed to this queue.
            host_task_queue=f"{task_queue}@{socket.gethostname()}-{uuid.uuid4().hex[:12]}",
        )
