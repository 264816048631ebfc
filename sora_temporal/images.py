"""Reference images: fetched, checked and fitted to the requested video size.

Sora refuses an ``input_reference`` whose dimensions differ from ``size`` ("Inpaint image must match
the requested width and height"), so the image is oriented (EXIF), converted to RGB, scaled to cover
the frame and centre-cropped to exactly ``width x height``. The submit activity and the starter (which
refuses a bad image before anything starts) both use this module.
"""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path
from urllib.parse import urlparse

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from sora_temporal.blocking import in_thread
from sora_temporal.bodies import BodyTooLarge, UnsupportedEncoding, read_capped
from sora_temporal.errors import ReferenceImageError
from sora_temporal.netguard import UrlPolicy, UrlRefused, guarded_client, open_guarded, redact_url
from sora_temporal.sora.models import ReferenceImage

MAX_PIXELS = 40_000_000
"""Default pixel limit (``REFERENCE_IMAGE_MAX_PIXELS``): above a 36-megapixel camera's photos, and
small enough that a decode stays near 160 MB (4 bytes a pixel) instead of Pillow's ~1 GB at 89 M."""
MAX_CONCURRENT_DECODES = 2
"""Images decoded at once in this process; more wait, so many jobs at once cannot add up their peaks."""
DECODE_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
"""Held while an image is decoded and fitted; process-wide, shared by every thread."""
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})


def is_url(source: str) -> bool:
    """Whether ``source`` is an http(s) URL rather than a local path."""
    return urlparse(source).scheme in ("http", "https")


async def fetch_reference(
    source: str, *, max_bytes: int, timeout: float, policy: UrlPolicy | None = None
) -> bytes:
    """Read the image bytes from an http(s) URL, within a size and time limit.

    A worker never reads a path named in its input (that would hand any file it can read to
    whoever starts a workflow): paths are read by the starter, where the user is
    (:func:`read_local_reference`).

    The URL, every redirect (at most three) and every address they resolve to must pass ``policy``
    (:mod:`sora_temporal.netguard`; public https only by default), and the body is counted as it is
    decoded, so neither an internal address nor a compressed bomb gets through.

    Raises:
        ReferenceImageError: If it is not an http(s) URL, refused by ``policy``, or unreachable,
            too large or too slow.
    """
    if not is_url(source):
        raise ReferenceImageError("only http(s) URLs are fetched; local files are handed over as bytes")
    return await _download(source, max_bytes=max_bytes, timeout=timeout, policy=policy or UrlPolicy())


def read_local_reference(source: str, max_bytes: int) -> bytes:
    """Read a local image file (for the starter), refusing it when it is missing or too large.

    Reads at most ``max_bytes + 1`` bytes whatever the file claims to be: ``/proc`` files and
    devices report a size of 0.

    Raises:
        ReferenceImageError: If it is missing, not a regular file or too large.
    """
    path = Path(source).expanduser()
    if not path.is_file():
        raise ReferenceImageError(f"{source!r} does not exist or is not a file")
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise ReferenceImageError(f"{source!r} cannot be read: {err.strerror}") from err
    if len(data) > max_bytes:
        raise ReferenceImageError(f"{source!r} is larger than the limit of {max_bytes} bytes")
    return data


async def _download(url: str, *, max_bytes: int, timeout: float, policy: UrlPolicy) -> bytes:
    shown = redact_url(url)  # a reference URL may carry credentials; messages never show them
    try:
        # httpx's timeout bounds each network step; this bounds the whole fetch, so a server that
        # trickles bytes just fast enough to dodge the first cannot hold the activity indefinitely.
        async with asyncio.timeout(timeout), guarded_client(policy, timeout=timeout) as client:
            response = await open_guarded(client, url, policy)
            try:
                if response.status_code != 200:
                    raise ReferenceImageError(f"{shown} answered HTTP {response.status_code}")
                return await read_capped(response, max_bytes)
            finally:
                await response.aclose()
    except UrlRefused as err:
        raise ReferenceImageError(f"refused to fetch {err.target}: {err.reason}") from err
    except BodyTooLarge as err:
        raise ReferenceImageError(f"{shown}: {err}") from err
    except UnsupportedEncoding as err:
        raise ReferenceImageError(f"{shown}: {err}") from err
    except httpx.TimeoutException as err:
        raise ReferenceImageError(f"{shown} did not answer within {timeout:g} s") from err
    except TimeoutError as err:
        raise ReferenceImageError(f"{shown} was not received in full within {timeout:g} s") from err
    except httpx.HTTPError as err:
        raise ReferenceImageError(f"{shown} is unreachable: {type(err).__name__}") from err


def fit_reference(
    data: bytes, width: int, height: int, *, name: str = "reference", max_pixels: int = MAX_PIXELS
) -> ReferenceImage:
    """Turn any supported image into a JPEG of exactly ``width x height``.

    The size is read from the header and checked against ``max_pixels`` before anything is decoded
    (this limit, not Pillow's process-wide ``MAX_IMAGE_PIXELS`` or warning filters, which other
    threads share), and at most :data:`MAX_CONCURRENT_DECODES` images are decoded at once in this
    process. Blocking: call it in a thread from async code.

    Raises:
        ReferenceImageError: If the bytes are not an image, are corrupt, or would decompress into
            more than ``max_pixels`` pixels.
    """
    with DECODE_SLOTS:
        fitted = _fit(data, width, height, name=name, max_pixels=max_pixels)
        out = io.BytesIO()
        fitted.save(out, format="JPEG", quality=92)
    return ReferenceImage(data=out.getvalue(), filename="reference.jpg", content_type="image/jpeg")


def _fit(data: bytes, width: int, height: int, *, name: str, max_pixels: int) -> Image.Image:
    try:
        # Image.open reads only the header: the size is known before a single pixel is decoded.
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ACCEPTED_FORMATS:
                raise ReferenceImageError(f"{name}: {image.format} images are not supported")
            w, h = image.size
            if w * h > max_pixels:
                raise ReferenceImageError(
                    f"{name}: {w}x{h} is too many pixels (limit {max_pixels}); "
                    "refusing a possible decompression bomb"
                )
            # A large JPEG is decoded at a reduced scale (1/2 to 1/8) that still covers the frame.
            side = max(width, height)
            image.draft(None, (side, side))
            image.load()
            oriented = ImageOps.exif_transpose(image)
            rgb = _to_rgb(oriented)
            return ImageOps.fit(rgb, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    except ReferenceImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # The warning only arrives as an exception where warnings are errors (e.g. under pytest -W error).
        raise ReferenceImageError(f"{name}: refusing a possible decompression bomb ({err})") from err
    except UnidentifiedImageError as err:
        raise ReferenceImageError(f"{name} is not an image") from err
    except Exception as err:
        # A decoder fed hostile bytes can fail in many ways (OSError, SyntaxError, struct.error, ...).
        raise ReferenceImageError(f"{name} is corrupt or truncated: {type(err).__name__}: {err}") from err


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparent areas flattened onto white (Sora takes no alpha)."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    if image.mode == "I":
        # 16-bit greyscale: scale into 8 bits rather than clipping everything to white.
        image = image.point(lambda v: v * (1 / 256)).convert("L")
    return image.convert("RGB")


async def load_reference(
    source: str,
    width: int,
    height: int,
    *,
    max_bytes: int,
    timeout: float,
    policy: UrlPolicy | None = None,
    max_pixels: int = MAX_PIXELS,
) -> ReferenceImage:
    """Fetch and fit a reference image in one step."""
    data = await fetch_reference(source, max_bytes=max_bytes, timeout=timeout, policy=policy)
    label = redact_url(source) if is_url(source) else Path(source).name
    # Decoding and resizing a large photo takes seconds of CPU: keep the event loop (and heartbeats) free.
    return await in_thread(fit_reference, data, width, height, name=label, max_pixels=max_pixels)


def shrink_jpeg(
    data: bytes, max_bytes: int, *, qualities: tuple[int, ...] = (85, 75, 65, 50)
) -> bytes | None:
    """Re-encode a fitted JPEG at lower qualities until it is at most ``max_bytes``.

    Args:
        data: A JPEG made by :func:`fit_reference` (already the right size, so decoding it is cheap).
        max_bytes: The size to fit in.
        qualities: JPEG qualities to try, best first.

    Returns:
        ``data`` itself when it already fits, the first re-encoding that fits, or ``None``.
    """
    if len(data) <= max_bytes:
        return data
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        for quality in qualities:
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=quality)
            if out.tell() <= max_bytes:
                return out.getvalue()
    return None
