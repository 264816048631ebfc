"""A ``python -m api`` child process on loopback, for the tests that need the HTTP API or its webhook endpoint."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devtools.devstack import ROOT, start_ready, stop

READY = "api ready on "


@dataclass
class ApiProcess:
    """A ``python -m api`` child process on loopback.

    Attributes:
        env: Its environment (the deployment's, plus the API's own variables).
        log_path: Where its stderr goes.
        port: The port it listens on (chosen by the first start, kept by restarts).
    """

    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client's ``base_url`` is set to."""
        return self.root_url + "/v1"

    @property
    def webhook_url(self) -> str:
        """Where the provider's webhooks go."""
        return self.root_url + "/webhooks/openai"

    def start(self) -> ApiProcess:
        """Start it (on the same port as before, after a restart) and wait for its ready line."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process, line = start_ready(
                [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(self.port)],
                ready=READY,
                timeout=60,
                env=self.env,
                cwd=ROOT,
                stderr=log,
                new_session=True,
            )
        self.port = int(line.rpartition(":")[2])
        return self

    def stop(self) -> None:
        """SIGTERM (then SIGKILL)."""
        stop(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
