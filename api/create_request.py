"""Reading and validating ``POST /v1/videos`` bodies (JSON, multipart or url-encoded).

The checks are the starter's (:func:`sora_temporal.validation.validate_request`), run before any
workflow starts, so bad input is refused with a 400 naming the field and never costs an upstream call.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from api.errors import ApiError, BodyTooLarge, invalid
from sora_temporal.validation import InvalidVideoRequest, parse_size, validate_request

# The protocol's defaults (OpenAI's API documentation): note 720x1280, portrait.
DEFAULT_MODEL = "sora-2"
DEFAULT_SIZE = "720x1280"
DEFAULT_SECONDS = "4"
FIELDS = frozenset({"prompt", "model", "size", "seconds", "input_reference"})
_NESTED = re.compile(r"^(\w+)\[(\w+)\]$")
_KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class CreateRequest:
    """A validated create request.

    Attributes:
        reference: The uploaded image's bytes, an image URL, or ``None``.
    """

    prompt: str
    model: str
    size: str
    seconds: int
    reference: bytes | str | None

    def fingerprint(self, reference_digest: str | None) -> str:
        """SHA-256 over every field, to tell a replay from a different request under one key."""
        canonical = json.dumps(
            [self.prompt, self.model, self.size, self.seconds, reference_digest], separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _wrong_type(name: str, expected: str, value: object) -> ApiError:
    got = {bool: "a boolean", int: "an integer", float: "a number", list: "an array", dict: "an object"}
    return invalid(
        name,
        f"Invalid type for '{name}': expected {expected}, but got {got.get(type(value), type(value).__name__)} instead.",
        code="invalid_type",
    )


async def _fields(request: Request, *, max_part_bytes: int) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = json.loads(await request.body() or b"{}")
        except (ValueError, UnicodeDecodeError) as err:
            raise invalid(
                None, "We could not parse the JSON body of your request.", code="invalid_json"
            ) from err
        if not isinstance(data, dict):
            raise invalid(None, "The request body must be a JSON object.", code="invalid_json")
        return data
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_files=1, max_fields=len(FIELDS) + 2, max_part_size=max_part_bytes)
        except BodyTooLarge:
            raise
        except Exception as err:  # python-multipart and Starlette raise several kinds
            raise invalid(None, f"Could not parse the form body: {err}", code="invalid_body") from err
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            nested = _NESTED.match(key)
            if isinstance(value, UploadFile):
                fields[key] = await value.read()
            elif nested:
                # The SDKs send a JSON object field of a multipart body as ``outer[inner]``.
                outer = fields.setdefault(nested.group(1), {})
                if isinstance(outer, dict):
                    outer[nested.group(2)] = value
            else:
                fields[key] = value
        return fields
    if not await request.body():
        return {}
    raise invalid(
        None,
        f"Unsupported content type '{content_type}'. Send application/json or multipart/form-data.",
        code="unsupported_content_type",
    )


def _seconds(value: object) -> int:
    # The protocol sends a string ("4"); a JSON integer is accepted too.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _wrong_type("seconds", "a whole number of seconds as a string, e.g. '4'", value)
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 4:
        raise invalid("seconds", f"Invalid value for 'seconds': {value!r}. Expected e.g. '4', '8' or '12'.")
    return int(text)


def _reference(value: object) -> bytes | str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        if not value:
            raise invalid("input_reference", "The uploaded 'input_reference' file is empty.")
        return value
    if isinstance(value, dict):
        if set(value) == {"image_url"} and isinstance(value["image_url"], str) and value["image_url"]:
            return value["image_url"]
        if set(value) == {"file_id"}:
            raise invalid(
                "input_reference",
                "'input_reference.file_id' is not supported here; upload the image or pass an image_url.",
                code="unsupported_value",
            )
        raise invalid(
            "input_reference", "Invalid 'input_reference': expected a file or an object with 'image_url'."
        )
    raise _wrong_type("input_reference", "an image file or an object with 'image_url'", value)


async def read_create_request(request: Request, *, max_reference_bytes: int) -> CreateRequest:
    """Parse and validate the body of ``POST /v1/videos``.

    Raises:
        ApiError: 400 naming the first field at fault.
    """
    fields = await _fields(request, max_part_bytes=max_reference_bytes + 1)
    for name in fields:
        if name not in FIELDS:
            raise invalid(name, f"Unknown parameter: '{name}'.", code="unknown_parameter")
    prompt = fields.get("prompt")
    if prompt is None:
        raise invalid("prompt", "Missing required parameter: 'prompt'.", code="missing_required_parameter")
    if not isinstance(prompt, str):
        raise _wrong_type("prompt", "a string", prompt)
    model = fields.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    size = fields.get("size", DEFAULT_SIZE)
    if not isinstance(size, str):
        raise _wrong_type("size", "a string like '1280x720'", size)
    if size != size.strip():
        raise invalid("size", f"Invalid 'size': {size!r} has surrounding whitespace.")
    seconds = _seconds(fields.get("seconds", DEFAULT_SECONDS))
    try:
        validate_request(prompt, model, size, seconds)
        width, height = parse_size(size)
    except InvalidVideoRequest as err:
        raise invalid(err.param, err.message) from err
    return CreateRequest(
        prompt=prompt,
        model=model,
        size=f"{width}x{height}",
        seconds=seconds,
        reference=_reference(fields.get("input_reference")),
    )


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, if sent.

    Raises:
        ApiError: 400 when it is empty, too long or not printable ASCII.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _KEY_CHARS.match(key) or len(key) > 255:
        raise invalid(
            "Idempotency-Key",
            "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
            code="invalid_idempotency_key",
        )
    return key
