"""Reference images handed to a workflow, host-independently.

A path means something only on the host where it was typed, and letting a worker open a path named
in its input would hand any file it can read to whoever starts a workflow. So whoever starts the
workflow (``starter.py``, the ``api`` process) reads and fits the image where the user is and hands
the *fitted JPEG* over as a :class:`~sora_temporal.types.ReferenceImageInput`:

* inline (``jpeg_base64``) when it is at most 256 KiB, re-encoded at a lower JPEG quality first when
  that makes it fit (a fitted frame almost always does);
* otherwise stored by content hash in the configured storage (``storage_key``
  ``references/<sha256>.jpg``), which the worker reads back and checks against the hash;
* or an http(s) URL, which the worker fetches within its own limits.

The worker (:func:`receive`) fits whatever it gets again, through the same Pillow limits as any
other image, so the bytes Sora receives are always checked on the worker.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from pathlib import Path

from sora_temporal.blocking import in_thread
from sora_temporal.errors import ReferenceImageError
from sora_temporal.images import MAX_PIXELS, fit_reference, load_reference, read_local_reference, shrink_jpeg
from sora_temporal.netguard import UrlPolicy, UrlRefused
from sora_temporal.sora.models import ReferenceImage
from sora_temporal.storage.base import Storage, StorageError, StorageFailure
from sora_temporal.types import ReferenceImageInput, VideoRequest
from sora_temporal.validation import (
    INLINE_REFERENCE_MAX_BYTES,
    REFERENCE_KEY,
    inline_jpeg,
    is_http_url,
    parse_size,
)

REFERENCE_PREFIX = "references"


def reference_key(sha256: str) -> str:
    """Where a fitted reference image with this content hash is stored."""
    return f"{REFERENCE_PREFIX}/{sha256}.jpg"


# --- the side that starts workflows --------------------------------------------------------------


def fit_local_file(source: str, size: str, *, max_bytes: int) -> bytes:
    """Read an image file on this host and fit it to ``size``; blocking (run it in a thread).

    A relative path is taken from the current directory of *this* process.

    Raises:
        ReferenceImageError: Missing, too large, not an image, corrupt, or a decompression bomb.
        InvalidVideoRequest: ``size`` is malformed.
    """
    width, height = parse_size(size)
    path = Path(source).expanduser().absolute()
    data = read_local_reference(str(path), max_bytes)
    return fit_reference(data, width, height, name=path.name).data


async def hand_over(fitted_jpeg: bytes, *, storage: Storage | None) -> ReferenceImageInput:
    """The workflow-input form of a fitted JPEG: inline when it fits, else stored by content hash.

    Args:
        fitted_jpeg: A JPEG made by :func:`sora_temporal.images.fit_reference`.
        storage: Where a JPEG too large to carry inline is stored; ``None`` when there is none.

    Raises:
        ReferenceImageError: Too large to carry inline and no storage to put it in.
        StorageError: The store failed.
    """
    small = await in_thread(shrink_jpeg, fitted_jpeg, INLINE_REFERENCE_MAX_BYTES)
    if small is not None:
        return ReferenceImageInput(jpeg_base64=base64.b64encode(small).decode("ascii"))
    if storage is None:
        raise ReferenceImageError(
            f"the fitted image is {len(fitted_jpeg)} bytes, more than the {INLINE_REFERENCE_MAX_BYTES} "
            "that travel inline, and no storage is configured to hand it over"
        )
    key = reference_key(hashlib.sha256(fitted_jpeg).hexdigest())
    with tempfile.TemporaryDirectory(prefix="sora-reference-") as scratch:
        path = Path(scratch) / "reference.jpg"
        await in_thread(path.write_bytes, fitted_jpeg)
        await storage.put_file(path, key, "image/jpeg")
    return ReferenceImageInput(storage_key=key)


def hand_over_url(url: str, *, policy: UrlPolicy | None = None) -> ReferenceImageInput:
    """The workflow-input form of an image URL, which the worker fetches within its limits.

    Args:
        url: The image URL.
        policy: When given, the URL's form (scheme, host, an address written into it) is checked
            here, so a URL the worker would refuse is refused before anything starts. Names are
            judged by the addresses they resolve to only when the worker connects.

    Raises:
        ReferenceImageError: Not an absolute http(s) URL, or refused by ``policy``.
    """
    if not is_http_url(url):
        raise ReferenceImageError("an image URL must be an absolute http(s) URL")
    if policy is not None:
        try:
            policy.check_url(url)
        except UrlRefused as err:
            raise ReferenceImageError(str(err)) from None
    return ReferenceImageInput(url=url)


# --- the worker ------------------------------------------------------------------------------------


async def receive(
    request: VideoRequest,
    *,
    storage: Storage,
    max_bytes: int,
    timeout: float,
    policy: UrlPolicy | None = None,
    max_pixels: int = MAX_PIXELS,
) -> ReferenceImage | None:
    """The reference image of ``request``, fitted to its size, ready to upload; ``None`` without one.

    Never opens a local path: a path in ``reference_image`` is refused. A URL is fetched only as
    ``policy`` allows (public https by default), and every image is decoded within ``max_pixels``.

    Raises:
        ReferenceImageError, InvalidVideoRequest: The image cannot be used (never worth a retry).
        StorageError: The store could not be read (retryable when the store says so).
    """
    width, height = parse_size(request.size)
    ref = request.reference
    if ref is None:
        if request.reference_image is None:
            return None
        ref = ReferenceImageInput(url=request.reference_image)
    if ref.url is not None:
        if not is_http_url(ref.url):
            raise ReferenceImageError(
                "the worker never opens a path named in its input; hand the image over as bytes "
                "(starter.py does) or as an http(s) URL"
            )
        return await load_reference(
            ref.url,
            width,
            height,
            max_bytes=max_bytes,
            timeout=timeout,
            policy=policy,
            max_pixels=max_pixels,
        )
    if ref.storage_key is not None:
        data = await _read_stored(storage, ref.storage_key, max_bytes)
        label = "stored reference image"
    else:
        data = inline_jpeg(ref)
        label = "inline reference image"
    # Fitted again on this host, through the same decoder limits as any image.
    return await in_thread(fit_reference, data, width, height, name=label, max_pixels=max_pixels)


async def _read_stored(storage: Storage, key: str, max_bytes: int) -> bytes:
    if not REFERENCE_KEY.fullmatch(key):
        raise ReferenceImageError("storage_key must look like references/<sha256 of the JPEG>.jpg")
    try:
        info = await storage.stat(key)
        if info.size > max_bytes:
            raise ReferenceImageError(f"{key} is {info.size} bytes; the limit is {max_bytes}")
        chunks: list[bytes] = []
        received = 0
        async for block in storage.open_range(key, 0, info.size):
            received += len(block)
            if received > max_bytes:
                raise ReferenceImageError(f"{key} is larger than the limit of {max_bytes} bytes")
            chunks.append(block)
    except StorageError as err:
        if err.kind is StorageFailure.OBJECT_MISSING:
            raise ReferenceImageError(f"{key} is not in the configured storage") from err
        raise
    data = b"".join(chunks)
    if hashlib.sha256(data).hexdigest() != key.removeprefix(f"{REFERENCE_PREFIX}/").removesuffix(".jpg"):
        raise ReferenceImageError(f"{key} does not match its content hash")
    return data
