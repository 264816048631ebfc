"""Profile a Python script in every thread; helper of ``benchmarks/load.py --profile-worker``.

``python benchmarks/_profiled.py OUT.pstats SCRIPT [ARGS...]`` runs ``SCRIPT`` as ``__main__`` (its
directory first on ``sys.path``, as ``python SCRIPT`` would) with a ``cProfile.Profile`` in the main
thread and in every thread it starts (``python -m cProfile`` sees the main thread only, and the
worker runs its workflow activations and synchronous activities in thread pools). Each profile
clocks its own thread's CPU time (:func:`time.thread_time`), so a thread waiting for work, for I/O
or for the GIL costs nothing. SIGUSR1 starts the window (start-up and warm-up are left out); when
the script ends — the worker ends on SIGTERM or SIGINT after its graceful shutdown — the profiles are
merged and written to ``OUT.pstats`` (read it with ``python -m pstats OUT.pstats`` or :mod:`pstats`).
Only the standard library is used: nothing is installed or downloaded.

Overhead: every call and return reads the thread's CPU clock (a system call), which made the N=500
worker about 4-5 times slower (0.56 against 0.12-0.18 CPU-s per job). Read the profile for *where* the
CPU goes (shares, call counts per activation), not the timings of the profiled run; call-heavy code
is over-represented. A stack sampler was tried and dropped: sampled between GIL switches, the threads
sit at their idle points (the pool's queue, ``select``), so it charged most CPU there.

Threads of native code (the Temporal SDK's Rust core) are not Python threads; ``load.py`` reports their
CPU from ``/proc/<pid>/task`` beside the profile.

Not a benchmark by itself: ``make bench`` runs every ``benchmarks/*.py``, so running this file without
arguments only says so.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import runpy
import signal
import sys
import threading
import time
from typing import Any

# pstats' form: {(file, line, function): (primitive calls, calls, own time, cumulative time, callers)}.
_Key = tuple[str, int, str]
_Stats = dict[_Key, tuple[Any, ...]]


def _stats(profile: Any) -> pstats.Stats:
    stats = pstats.Stats()
    stats.stats = profile  # type: ignore[attr-defined]
    stats.get_top_level_stats()
    return stats


class ThreadProfiles:
    """A ``cProfile.Profile`` per thread, clocking that thread's CPU time."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.main = cProfile.Profile(time.thread_time)
        self.baseline: dict[int, _Stats] = {}
        self._lock = threading.Lock()
        self._original_run = threading.Thread.run

    def start(self) -> None:
        profiles = self

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile(time.thread_time)
            with profiles._lock:
                profiles.profiles.append(profile)
            profile.enable()
            try:
                profiles._original_run(thread)
            finally:
                profile.disable()

        threading.Thread.run = run  # type: ignore[method-assign,assignment]
        self.profiles.append(self.main)
        self.main.enable()

    def mark(self) -> None:
        self.main.disable()  # the signal handler runs in the main thread: leave it out
        for profile in list(self.profiles):  # no lock: a signal handler must not wait
            self.baseline[id(profile)] = self._snapshot(profile)
        self.main.enable()

    def stop(self) -> None:
        self.main.disable()

    @staticmethod
    def _snapshot(profile: cProfile.Profile) -> _Stats:
        """The figures so far, read without stopping it (calls still running are not in them)."""
        profile.snapshot_stats()
        return dict(profile.stats)

    def stats(self) -> pstats.Stats | None:
        merged: pstats.Stats | None = None
        for profile in list(self.profiles):
            window = _minus(self._snapshot(profile), self.baseline.get(id(profile), {}))
            if not window:
                continue
            stats = _stats(window)
            if merged is None:
                merged = stats
            else:
                merged.add(stats)
        return merged


def _minus(now: _Stats, before: _Stats) -> _Stats:
    out: _Stats = {}
    for key, (cc, nc, tt, ct, callers) in now.items():
        if key in before:
            bcc, bnc, btt, bct, bcallers = before[key]
            cc, nc, tt, ct = cc - bcc, nc - bnc, tt - btt, ct - bct
            callers = {
                caller: tuple(
                    a - b for a, b in zip(value, bcallers.get(caller, (0,) * len(value)), strict=True)
                )
                for caller, value in callers.items()
            }
        if nc > 0 or tt > 0:
            out[key] = (cc, nc, tt, ct, callers)
    return out


def main(argv: list[str]) -> Any:
    if len(argv) < 2:
        print(
            "helper of benchmarks/load.py (--profile-worker); usage: _profiled.py OUT.pstats SCRIPT [ARGS...]"
        )
        return 0
    out, script, *rest = argv
    script = os.path.abspath(script)
    sys.argv = [script, *rest]
    sys.path[0] = os.path.dirname(script)
    profiler = ThreadProfiles()
    marked = False

    def mark(signum: int, frame: Any) -> None:
        nonlocal marked
        marked = True
        profiler.mark()
        print("profile window starts", file=sys.stderr, flush=True)

    signal.signal(signal.SIGUSR1, mark)
    profiler.start()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as done:
        return done.code
    finally:
        profiler.stop()
        stats = profiler.stats()
        if stats is not None and stats.stats:  # type: ignore[attr-defined]
            stats.dump_stats(out)
            since = "since SIGUSR1" if marked else "the whole run"
            print(f"profile ({since}) written to {out}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
