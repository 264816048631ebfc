"""Reference images that arrive with a request, made ready for the workflow in one place.

Uploaded bytes are fitted here, where they arrive (EXIF orientation, RGB, scaled and centre-cropped
to ``size``, JPEG), and handed over host-independently the way the starter hands its images over
(:func:`sora_temporal.references.hand_over`): inline in the workflow input when small, else stored by
content hash in the configured storage for the worker to read back. An image URL is handed over as
a URL, for the worker to fetch within its own address, size and time limits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from sora_temporal.blocking import in_thread
from sora_temporal.errors import ReferenceImageError
from sora_temporal.images import fit_reference
from sora_temporal.netguard import UrlPolicy
from sora_temporal.references import hand_over, hand_over_url
from sora_temporal.storage.base import Storage
from sora_temporal.types import ReferenceImageInput
from sora_temporal.validation import parse_size


@dataclass(frozen=True)
class PreparedReference:
    """A reference image, ready for the workflow input.

    Attributes:
        reference: The value for ``VideoRequest.reference``.
        label: How it is described in the Web UI (no URL: one may carry credentials).
        digest: Identifies what the client sent, for the idempotency fingerprint.
    """

    reference: ReferenceImageInput
    label: str
    digest: str


def _fit(data: bytes, size: str) -> bytes:
    width, height = parse_size(size)
    return fit_reference(data, width, height, name="input_reference").data


async def prepare_reference(
    source: bytes | str, size: str, *, storage: Storage, max_bytes: int, url_policy: UrlPolicy | None = None
) -> PreparedReference:
    """Check and fit uploaded bytes (or check an image URL) and hand them over to the workflow.

    Args:
        source: The uploaded file's bytes, or an image URL (``input_reference.image_url``).
        size: The validated ``WIDTHxHEIGHT`` of the video.
        storage: Where a fitted image too large to travel inline is kept.
        max_bytes: Upload size limit (``REFERENCE_IMAGE_MAX_BYTES``).
        url_policy: Refuses, before anything starts, an image URL that the worker would refuse.

    Raises:
        ReferenceImageError: Not an image, corrupt, too large, a bomb, or a URL that is not http(s).
        StorageError: A large fitted image could not be stored.
    """
    if isinstance(source, str):
        return PreparedReference(
            reference=hand_over_url(source, policy=url_policy),
            label=f"image URL on {urlsplit(source).hostname}",
            digest="url:" + hashlib.sha256(source.encode()).hexdigest(),
        )
    if len(source) > max_bytes:
        raise ReferenceImageError(f"the image is {len(source)} bytes; the limit is {max_bytes}")
    uploaded = hashlib.sha256(source).hexdigest()
    fitted = await in_thread(_fit, source, size)
    return PreparedReference(
        reference=await hand_over(fitted, storage=storage),
        label=f"uploaded image (sha256 {uploaded[:12]})",
        digest="file:" + uploaded,
    )
