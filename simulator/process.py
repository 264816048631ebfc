"""Child processes that announce readiness with a line on stdout.

Shared by the simulators' test harnesses and the local dev stack: start a command, wait (bounded) for
the line that says it is ready, keep draining its stdout so it can never block on a full pipe, and
stop it with SIGTERM, then SIGKILL if it lingers.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent


def start_ready(
    command: Sequence[str],
    *,
    ready: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stderr: IO[bytes] | int | None = None,
    new_session: bool = False,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``command`` and return once a stdout line contains ``ready``.

    Args:
        command: The command line.
        ready: Text the ready line contains.
        timeout: Seconds to wait for it.
        env: Environment (default: this process's), with the repository on ``PYTHONPATH`` so
            ``python -m simulator`` works from any directory.
        cwd: Working directory.
        stderr: Where the child's stderr goes (default: inherited).
        new_session: Detach from our process group, so a Ctrl-C reaches only us and we stop the
            child in order.

    Returns:
        The process and the ready line (stripped).

    Raises:
        RuntimeError: If the process exits or stays silent before printing the line; it is stopped.
    """
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH")]))
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=child_env,
        cwd=cwd,
        start_new_session=new_session,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=timeout)
            if line is None:
                process.wait(timeout=5)
                raise RuntimeError(
                    f"{' '.join(command)} failed to start: exited with {process.returncode} before it was ready; "
                    f"output: {''.join(seen)[-2000:]!r}"
                )
            if ready in line:
                return process, line.strip()
            seen.append(line)
    except queue.Empty:
        terminate(process)
        raise RuntimeError(
            f"{' '.join(command)} failed to start: no {ready!r} within {timeout:g} s"
        ) from None
    except BaseException:
        terminate(process)
        raise


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    # Drains stdout for the child's whole life; ends at EOF.
    try:
        with stream:
            for raw in stream:
                lines.put(raw.decode(errors="replace"))
    except (OSError, ValueError):
        pass
    lines.put(None)


def terminate(process: subprocess.Popen[bytes] | None, *, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
