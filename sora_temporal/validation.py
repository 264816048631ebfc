"""Request validation, done before any paid call: the one home of every bound on a request.

Strict for the known Sora models (their sizes and durations are documented), permissive for other
model names so that gateways fronting Veo, Runway and others keep working. Pure functions: safe to
call from workflow code, the starter, the API and the activities alike. The workflow checks its own
input with :func:`validate_workflow_input` before anything is paid for, for callers that bypass the
starter; a value that passes here cannot strand a paid job later (no ``nan`` timers, no headers that
cannot be encoded, no values the database cannot take).
"""

from __future__ import annotations

import binascii
import math
import re
from urllib.parse import urlsplit

from sora_temporal.types import ReferenceImageInput, VideoRequest

MAX_PROMPT_CHARS = 4000
SORA_SECONDS = (4, 8, 12)
SORA_SIZES: dict[str, tuple[str, ...]] = {
    "sora-2": ("720x1280", "1280x720"),
    "sora-2-pro": ("720x1280", "1280x720", "1024x1792", "1792x1024"),
}
# Dated snapshots such as ``sora-2-2025-10-06`` behave like their base model.
_SNAPSHOT = re.compile(r"^(sora-2(?:-pro)?)-\d{4}-\d{2}-\d{2}$")
# ASCII digits only (``\d`` also matches other scripts' digits) and no surrounding whitespace.
_SIZE = re.compile(r"([0-9]{2,5})x([0-9]{2,5})")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")
MAX_GATEWAY_SECONDS = 60
MAX_GATEWAY_SIDE = 4096
# Tab, newline and carriage return are text; every other control character (NUL above all, which
# PostgreSQL refuses) and unpaired surrogates (no UTF-8 form) are not.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

# --- timing: a paid job must never be stranded by a timer it cannot set ---------------------------
MIN_POLL_INTERVAL_SECONDS = 1.0
MAX_POLL_INTERVAL_SECONDS = 300.0
MIN_DEADLINE_SECONDS = 10.0
MAX_DEADLINE_SECONDS = 24 * 3600.0
# Each status check adds a handful of history events; far below Temporal's 50,000-event limit.
MAX_POLLS_PER_RUN = 2000
# The watch for a late video after the deadline (salvage): one run, no continue-as-new, so its
# status checks are bounded like a run's.
MAX_SALVAGE_WINDOW_SECONDS = 24 * 3600.0
MIN_SALVAGE_POLL_SECONDS = 1.0
MAX_SALVAGE_POLL_SECONDS = 3600.0

# --- workflow ids: safe in a header (Idempotency-Key), a database key and a search ------------------
WORKFLOW_ID_RULE = "1 to 128 ASCII letters, digits and . _ : @ -, starting with a letter or digit"
MAX_WORKFLOW_ID_CHARS = 128
_WORKFLOW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")

# --- reference images handed to the workflow --------------------------------------------------------
INLINE_REFERENCE_MAX_BYTES = 256 * 1024
"""Largest fitted JPEG carried inline in a workflow input (about 342 KiB as base64: every history
payload stays under 512 KB). Larger ones are stored by content hash (:data:`REFERENCE_KEY`)."""
REFERENCE_KEY = re.compile(r"references/[0-9a-f]{64}\.jpg")
"""Storage pathname of a handed-over reference image: ``references/<sha256 of the JPEG>.jpg``."""
MAX_REFERENCE_URL_CHARS = 2048


class InvalidVideoRequest(ValueError):
    """The request cannot be sent; ``param`` names the offending field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message

    @property
    def code(self) -> str:
        """The failure code recorded for it: ``invalid_reference_image`` or ``invalid_request``."""
        return "invalid_reference_image" if self.param == "reference_image" else "invalid_request"


def sora_base_model(model: str) -> str | None:
    """Return ``sora-2`` or ``sora-2-pro`` for a known Sora model or snapshot, else ``None``."""
    if model in SORA_SIZES:
        return model
    match = _SNAPSHOT.match(model)
    return match.group(1) if match else None


def parse_size(size: str) -> tuple[int, int]:
    """Parse ``WIDTHxHEIGHT``.

    Raises:
        InvalidVideoRequest: If the text is not of that form.
    """
    match = _SIZE.fullmatch(size) if isinstance(size, str) else None
    if not match:
        raise InvalidVideoRequest("size", f"size must look like 1280x720, got {size!r}")
    return int(match.group(1)), int(match.group(2))


def validate_request(prompt: str, model: str, size: str, seconds: int) -> None:
    """Check a request as the service would, before any money is spent.

    Raises:
        InvalidVideoRequest: With a message that names the problem.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidVideoRequest("prompt", "prompt must not be empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidVideoRequest(
            "prompt", f"prompt is {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS}"
        )
    if _NOT_TEXT.search(prompt):
        raise InvalidVideoRequest("prompt", "prompt must not contain NUL or other control characters")
    if not isinstance(model, str) or not _MODEL_NAME.fullmatch(model):
        raise InvalidVideoRequest("model", f"model name {model!r} is not valid")
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidVideoRequest("seconds", f"seconds must be a whole number, got {seconds!r}")
    width, height = parse_size(size)
    base = sora_base_model(model)
    if base is not None:
        allowed = SORA_SIZES[base]
        if f"{width}x{height}" not in allowed:
            raise InvalidVideoRequest(
                "size", f"size {size!r} is not supported by {model}; choose one of {', '.join(allowed)}"
            )
        if seconds not in SORA_SECONDS:
            raise InvalidVideoRequest(
                "seconds",
                f"seconds {seconds} is not supported by {model}; choose one of "
                + ", ".join(str(s) for s in SORA_SECONDS),
            )
    elif model.startswith("sora"):
        raise InvalidVideoRequest(
            "model", f"unknown Sora model {model!r}; choose one of {', '.join(SORA_SIZES)}"
        )
    else:
        if not (1 <= seconds <= MAX_GATEWAY_SECONDS):
            raise InvalidVideoRequest("seconds", f"seconds must be between 1 and {MAX_GATEWAY_SECONDS}")
        if not (16 <= width <= MAX_GATEWAY_SIDE and 16 <= height <= MAX_GATEWAY_SIDE):
            raise InvalidVideoRequest("size", f"size {size!r} is out of range")


def validate_timing(
    poll_interval_seconds: float,
    deadline_seconds: float,
    max_polls_per_run: int = MAX_POLLS_PER_RUN,
    webhook_fallback_seconds: float | None = None,
) -> None:
    """Check the poll interval, deadline and history bound: finite numbers within documented bounds.

    Raises:
        InvalidVideoRequest: ``nan``, ``inf``, not a number, or out of bounds.
    """
    _bounded("poll_interval", poll_interval_seconds, MIN_POLL_INTERVAL_SECONDS, MAX_POLL_INTERVAL_SECONDS)
    _bounded("deadline", deadline_seconds, MIN_DEADLINE_SECONDS, MAX_DEADLINE_SECONDS)
    if webhook_fallback_seconds is not None:
        _bounded(
            "webhook_fallback", webhook_fallback_seconds, MIN_POLL_INTERVAL_SECONDS, MAX_DEADLINE_SECONDS
        )
    if (
        isinstance(max_polls_per_run, bool)
        or not isinstance(max_polls_per_run, int)
        or not 1 <= max_polls_per_run <= MAX_POLLS_PER_RUN
    ):
        raise InvalidVideoRequest(
            "max_polls_per_run",
            f"max_polls_per_run must be a whole number from 1 to {MAX_POLLS_PER_RUN}, got {max_polls_per_run!r}",
        )


def validate_salvage(window_seconds: float, poll_seconds: float) -> None:
    """Check the salvage watch: a window of 0 (off) to 24 h, checks 1 s to 1 h apart, at most 2,000 checks.

    Raises:
        InvalidVideoRequest: ``nan``, ``inf``, not a number, out of bounds, or too many checks.
    """
    _bounded("salvage_window", window_seconds, 0.0, MAX_SALVAGE_WINDOW_SECONDS)
    _bounded("salvage_poll", poll_seconds, MIN_SALVAGE_POLL_SECONDS, MAX_SALVAGE_POLL_SECONDS)
    if window_seconds / poll_seconds > MAX_POLLS_PER_RUN:
        raise InvalidVideoRequest(
            "salvage_poll",
            f"a salvage window of {window_seconds:g} s checked every {poll_seconds:g} s is more than "
            f"{MAX_POLLS_PER_RUN} status checks; check less often",
        )


def _bounded(param: str, value: float, low: float, high: float) -> None:
    name = param.replace("_", " ")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidVideoRequest(param, f"{name} must be a finite number of seconds, got {value!r}")
    if not low <= value <= high:
        raise InvalidVideoRequest(
            param, f"{name} must be between {low:g} and {high:g} seconds, got {value:g}"
        )


def validate_workflow_id(workflow_id: str) -> None:
    """Check a workflow id against the documented rule (:data:`WORKFLOW_ID_RULE`).

    Raises:
        InvalidVideoRequest: With ``param`` ``workflow_id``.
    """
    if not isinstance(workflow_id, str) or not _WORKFLOW_ID.fullmatch(workflow_id):
        shown = (
            workflow_id
            if not isinstance(workflow_id, str) or len(workflow_id) <= 80
            else workflow_id[:77] + "..."
        )
        raise InvalidVideoRequest(
            "workflow_id", f"workflow id {shown!r} is not valid: use {WORKFLOW_ID_RULE}"
        )


def is_http_url(value: str) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def validate_reference(reference: ReferenceImageInput | None, legacy: str | None = None) -> None:
    """Check how a reference image is handed over; the worker never opens a path named in an input.

    Args:
        reference: :attr:`VideoRequest.reference`.
        legacy: :attr:`VideoRequest.reference_image`, the older string form; only an http(s) URL is
            accepted there now.

    Raises:
        InvalidVideoRequest: With ``param`` ``reference_image``.
    """
    if legacy is not None:
        if reference is not None:
            raise InvalidVideoRequest("reference_image", "give reference or reference_image, not both")
        _check_url(legacy)
        return
    if reference is None:
        return
    given = [v for v in (reference.jpeg_base64, reference.storage_key, reference.url) if v is not None]
    if len(given) != 1:
        raise InvalidVideoRequest(
            "reference_image", "a reference image needs exactly one of jpeg_base64, storage_key or url"
        )
    if reference.url is not None:
        _check_url(reference.url)
    elif reference.storage_key is not None:
        if not isinstance(reference.storage_key, str) or not REFERENCE_KEY.fullmatch(reference.storage_key):
            raise InvalidVideoRequest(
                "reference_image", "storage_key must look like references/<sha256 of the JPEG>.jpg"
            )
    else:
        inline_jpeg(reference)


def inline_jpeg(reference: ReferenceImageInput) -> bytes:
    """The bytes of an inline reference image.

    Raises:
        InvalidVideoRequest: Not base64, empty, or larger than :data:`INLINE_REFERENCE_MAX_BYTES`.
    """
    text = reference.jpeg_base64
    # Checked before decoding, so a huge input costs nothing.
    if not isinstance(text, str) or len(text) > (INLINE_REFERENCE_MAX_BYTES + 2) // 3 * 4:
        raise InvalidVideoRequest(
            "reference_image",
            f"an inline reference image may be at most {INLINE_REFERENCE_MAX_BYTES} bytes; "
            "store a larger one and pass its storage_key",
        )
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidVideoRequest("reference_image", "jpeg_base64 is not valid base64") from err
    if not data:
        raise InvalidVideoRequest("reference_image", "the inline reference image is empty")
    if len(data) > INLINE_REFERENCE_MAX_BYTES:
        raise InvalidVideoRequest(
            "reference_image",
            f"an inline reference image may be at most {INLINE_REFERENCE_MAX_BYTES} bytes, got {len(data)}",
        )
    return data


def _check_url(value: str) -> None:
    if not isinstance(value, str) or not is_http_url(value):
        raise InvalidVideoRequest(
            "reference_image",
            "a reference image must be handed over as bytes or as an http(s) URL; the worker never "
            "opens a path named in a workflow input (starter.py reads the file where you are)",
        )
    if len(value) > MAX_REFERENCE_URL_CHARS or _NOT_TEXT.search(value) or any(c.isspace() for c in value):
        raise InvalidVideoRequest(
            "reference_image",
            f"a reference image URL must be at most {MAX_REFERENCE_URL_CHARS} characters, without spaces or control characters",
        )


def validate_workflow_input(workflow_id: str, request: VideoRequest) -> None:
    """Everything a workflow checks about its own input before the first paid call.

    Raises:
        InvalidVideoRequest: The first problem found; ``param`` names the field.
    """
    validate_workflow_id(workflow_id)
    validate_request(request.prompt, request.model, request.size, request.seconds)
    validate_timing(
        request.poll_interval_seconds,
        request.deadline_seconds,
        request.max_polls_per_run,
        request.webhook_fallback_seconds,
    )
    validate_salvage(request.salvage_window_seconds, request.salvage_poll_seconds)
    validate_reference(request.reference, request.reference_image)
