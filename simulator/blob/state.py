"""Everything one emulator process knows: the store, its token and the injected trouble."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from simulator.blob.faults import Faults
from simulator.blob.store import BlobStore


@dataclass
class EmulatorState:
    """One emulated store.

    Attributes:
        store: The objects and unfinished multipart uploads.
        token: The read-write token API calls (and private blob URLs) must present.
        store_id: The store id inside ``token``; blob URL hosts start with it (lower-cased).
        mpu_ttl: Seconds an unfinished multipart upload may sit idle before its parts are deleted.
        faults: Failures, delays and suspension set through ``/_emu/``.
    """

    store: BlobStore
    token: str
    store_id: str
    mpu_ttl: float
    faults: Faults = field(default_factory=Faults)


STATE: web.AppKey[EmulatorState] = web.AppKey("state", EmulatorState)

__all__ = ["STATE", "EmulatorState"]
