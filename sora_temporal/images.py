"""Reference images: fetched, checked and fitted to the requested video size.

Sora refuses an ``input_reference`` whose dimensions differ from ``size`` ("Inpaint image must match
the requested width and height"), so the image is oriented (EXIF), converted to RGB, scaled to cover
the frame and centre-cropped to exactly ``width x height``. The submit activity and the starter (which
refuses a bad image before anything starts) both use this module.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from pathlib import Path
from urllib.parse import urlparse

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from sora_temporal.blocking import in_thread
from sora_temporal.errors import ReferenceImageError
from sora_temporal.sora.models import ReferenceImage

# Far above any real photo (a 100-megapixel camera), far below what a decompression bomb expands to.
MAX_PIXELS = 120_000_000
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})


def is_url(source: str) -> bool:
    """Whether ``source`` is an http(s) URL rather than a local path."""
    return urlparse(source).scheme in ("http", "https")


async def fetch_reference(source: str, *, max_bytes: int, timeout: float) -> bytes:
    """Read the image bytes from a local path or an http(s) URL, within a size and time limit.

    Raises:
        ReferenceImageError: If it is missing, unreachable, too large or too slow.
    """
    if is_url(source):
        return await _download(source, max_bytes=max_bytes, timeout=timeout)
    if "://" in source:
        raise ReferenceImageError(f"{source!r}: only local paths and http(s) URLs are supported")
    # Up to max_bytes (20 MiB by default) from disk: not on the event loop.
    return await in_thread(read_local_reference, source, max_bytes)


def read_local_reference(source: str, max_bytes: int) -> bytes:
    """Read a local image file, refusing it when it is missing or larger than ``max_bytes``.

    Raises:
        ReferenceImageError: If it is missing, not a file or too large.
    """
    path = Path(source).expanduser()
    if not path.is_file():
        raise ReferenceImageError(f"{source!r} does not exist or is not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ReferenceImageError(f"{source!r} is {size} bytes; the limit is {max_bytes}")
    return path.read_bytes()


async def _download(url: str, *, max_bytes: int, timeout: float) -> bytes:
    chunks: list[bytes] = []
    received = 0
    try:
        # httpx's timeout bounds each network step; this bounds the whole fetch, so a server that
        # trickles bytes just fast enough to dodge the first cannot hold the activity indefinitely.
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=True, max_redirects=5) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ReferenceImageError(f"{url} answered HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise ReferenceImageError(f"{url} is {declared} bytes; the limit is {max_bytes}")
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise ReferenceImageError(f"{url} is larger than the limit of {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.TimeoutException as err:
        raise ReferenceImageError(f"{url} did not answer within {timeout:g} s") from err
    except TimeoutError as err:
        raise ReferenceImageError(f"{url} was not received in full within {timeout:g} s") from err
    except httpx.HTTPError as err:
        raise ReferenceImageError(f"{url} is unreachable: {type(err).__name__}: {err}") from err
    return b"".join(chunks)


def fit_reference(data: bytes, width: int, height: int, *, name: str = "reference") -> ReferenceImage:
    """Turn any supported image into a JPEG of exactly ``width x height``.

    Raises:
        ReferenceImageError: If the bytes are not an image, are corrupt, or would decompress into
            more than ``MAX_PIXELS`` pixels.
    """
    try:
        with warnings.catch_warnings():
            # Pillow only warns below twice its own limit; treat every bomb as an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ACCEPTED_FORMATS:
                    raise ReferenceImageError(f"{name}: {image.format} images are not supported")
                w, h = image.size
                if w * h > MAX_PIXELS:
                    raise ReferenceImageError(
                        f"{name}: {w}x{h} is too many pixels (limit {MAX_PIXELS}); refusing a possible decompression bomb"
                    )
                image.load()
                oriented = ImageOps.exif_transpose(image)
                rgb = _to_rgb(oriented)
                fitted = ImageOps.fit(
                    rgb, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5)
                )
    except ReferenceImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ReferenceImageError(f"{name}: refusing a possible decompression bomb ({err})") from err
    except UnidentifiedImageError as err:
        raise ReferenceImageError(f"{name} is not an image") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ReferenceImageError(f"{name} is corrupt or truncated: {err}") from err
    out = io.BytesIO()
    fitted.save(out, format="JPEG", quality=92)
    return ReferenceImage(data=out.getvalue(), filename="reference.jpg", content_type="image/jpeg")


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
    source: str, width: int, height: int, *, max_bytes: int, timeout: float
) -> ReferenceImage:
    """Fetch and fit a reference image in one step."""
    data = await fetch_reference(source, max_bytes=max_bytes, timeout=timeout)
    label = source if is_url(source) else Path(source).name
    # Decoding and resizing a large photo takes seconds of CPU: keep the event loop (and heartbeats) free.
    return await in_thread(fit_reference, data, width, height, name=label)
