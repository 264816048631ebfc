"""Peak memory of uploading a 500 MB file: ``VercelBlobStorage`` (real SDK, local emulator) vs ``LocalStorage``.

Run: ``.venv/bin/python benchmarks/upload_rss.py [--size-mb 500]``. Linux only (reads ``/proc``).

How memory is measured, for this process only (the emulator runs in its own process):

* idle: ``VmRSS`` right before the upload, after a 1 KiB warm-up upload through the same backend,
  so one-time lazy set-up (SDK models, HTTP client, worker threads) is not charged to the big file.
* peak: the larger of two readings taken while uploading:
  - ``VmHWM`` (the kernel's high-water mark of RSS) after resetting it to the current RSS by
    writing ``5`` to ``/proc/self/clear_refs`` just before the upload; this misses nothing, however
    brief;
  - the highest ``VmRSS`` seen by a thread sampling every 2 ms (a cross-check, and the only reading
    where ``clear_refs`` is not writable).
* delta = peak - idle; ratio = peak / idle.

The target is a delta under 64 MB: the file must be streamed, never held whole in memory. Exits
with status 1 when a backend misses it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from simulator.blob.testing import start_blob_emulator
from sora_temporal.storage.base import Storage
from sora_temporal.storage.local import LocalStorage
from sora_temporal.storage.vercel import VercelBlobStorage

MB = 1024 * 1024
TARGET_DELTA_MB = 64.0


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


class _Sampler:
    """Polls VmRSS in a thread and keeps the maximum."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb("VmRSS"))
            time.sleep(self.interval)

    def __enter__(self) -> _Sampler:
        self.peak_kb = _status_kb("VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, _status_kb("VmRSS"))


@dataclass(frozen=True)
class Measurement:
    """One backend's figures, in MB."""

    backend: str
    cold: float
    """VmRSS before the warm-up upload."""
    idle: float
    peak: float
    peak_hwm: float | None
    peak_sampled: float
    seconds: float

    @property
    def delta(self) -> float:
        return self.peak - self.idle

    @property
    def ratio(self) -> float:
        return self.peak / self.idle


async def _measure(
    backend: str, storage: Storage, source: Path, warmup: Path, verify: Callable[[], Awaitable[None]]
) -> Measurement:
    cold_kb = _status_kb("VmRSS")
    await storage.put_file(warmup, "bench/warmup.bin", "application/octet-stream")
    gc.collect()
    idle_kb = _status_kb("VmRSS")
    hwm_reset = _reset_high_water_mark()
    started = time.perf_counter()
    with _Sampler() as sampler:
        await storage.put_file(source, "bench/big.mp4", "video/mp4")
    seconds = time.perf_counter() - started
    hwm_kb = _status_kb("VmHWM") if hwm_reset else None
    await verify()
    peak_kb = max(sampler.peak_kb, hwm_kb or 0)
    return Measurement(
        backend=backend,
        cold=cold_kb / 1024,
        idle=idle_kb / 1024,
        peak=peak_kb / 1024,
        peak_hwm=None if hwm_kb is None else hwm_kb / 1024,
        peak_sampled=sampler.peak_kb / 1024,
        seconds=seconds,
    )


def _make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as sink:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 4 * MB))
            digest.update(chunk)
            sink.write(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def _report(m: Measurement, size: int) -> None:
    hwm = "n/a (clear_refs not writable)" if m.peak_hwm is None else f"{m.peak_hwm:.1f} MB"
    verdict = "OK" if m.delta <= TARGET_DELTA_MB else "OVER TARGET"
    print(
        f"{m.backend:<8} idle {m.idle:7.1f} MB  peak {m.peak:7.1f} MB  delta {m.delta:6.1f} MB  "
        f"ratio {m.ratio:5.2f}  [VmHWM {hwm}, sampled VmRSS {m.peak_sampled:.1f} MB, "
        f"before warm-up {m.cold:.1f} MB]  "
        f"{size / MB / m.seconds:6.0f} MB/s  {verdict}"
    )


async def _main(size_mb: int) -> int:
    size = size_mb * MB
    with tempfile.TemporaryDirectory(prefix="upload-rss-") as scratch:
        root = Path(scratch)
        source = root / "big.mp4"
        warmup = root / "warmup.bin"
        print(f"writing a {size_mb} MB random file ...", flush=True)
        digest = _make_file(source, size)
        warmup.write_bytes(os.urandom(1024))

        results: list[Measurement] = []

        local_root = root / "local"

        async def verify_local() -> None:
            copy = local_root / "bench" / "big.mp4"
            assert copy.stat().st_size == size, "local copy has the wrong size"
            copy.unlink()  # frees the disk space before the next run

        results.append(await _measure("local", LocalStorage(local_root), source, warmup, verify_local))

        with start_blob_emulator(root / "emulator") as emulator:
            storage = VercelBlobStorage(emulator.token, api_url=emulator.api_url)

            async def verify_vercel() -> None:
                [stored] = [o for o in emulator.objects() if o.pathname == "bench/big.mp4"]
                assert stored.sha256 == digest, "the emulator holds different bytes"

            results.append(await _measure("vercel", storage, source, warmup, verify_vercel))
            await storage.aclose()

    print(f"uploaded {size_mb} MB; target: peak within {TARGET_DELTA_MB:.0f} MB of idle")
    for measurement in results:
        _report(measurement, size)
    return 0 if all(m.delta <= TARGET_DELTA_MB for m in results) else 1


def main() -> None:
    """Run both backends and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=500)
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("this benchmark reads /proc and needs Linux")
    sys.exit(asyncio.run(_main(args.size_mb)))


if __name__ == "__main__":
    main()
