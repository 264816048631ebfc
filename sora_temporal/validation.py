"""Request validation, done before any paid call.

Strict for the known Sora models (their sizes and durations are documented), permissive for other
model names so that gateways fronting Veo, Runway and others keep working. Pure functions: safe to
call from workflow code, the starter and the activities alike.
"""

from __future__ import annotations

import re

MAX_PROMPT_CHARS = 4000
SORA_SECONDS = (4, 8, 12)
SORA_SIZES: dict[str, tuple[str, ...]] = {
    "sora-2": ("720x1280", "1280x720"),
    "sora-2-pro": ("720x1280", "1280x720", "1024x1792", "1792x1024"),
}
# Dated snapshots such as ``sora-2-2025-10-06`` behave like their base model.
_SNAPSHOT = re.compile(r"^(sora-2(?:-pro)?)-\d{4}-\d{2}-\d{2}$")
_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")
MAX_GATEWAY_SECONDS = 60
MAX_GATEWAY_SIDE = 4096


class InvalidVideoRequest(ValueError):
    """The request cannot be sent; ``param`` names the offending field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


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
    match = _SIZE.match(size.strip()) if isinstance(size, str) else None
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
    if not isinstance(model, str) or not _MODEL_NAME.match(model):
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
