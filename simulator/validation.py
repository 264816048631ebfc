"""Reading and validating create/remix request bodies the way the real services do."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from simulator import errors
from simulator.config import Dialect

OPENAI_SECONDS = ("4", "8", "12")
SORA2_SIZES = ("720x1280", "1280x720")
SORA2_PRO_SIZES = (*SORA2_SIZES, "1024x1792", "1792x1024")
DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"

_MODEL = re.compile(r"^sora-2(?P<pro>-pro)?(?:-\d{4}-\d{2}-\d{2})?$")
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_NESTED_FIELD = re.compile(r"^(\w+)\[(\w+)\]$")
_IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_CREATE_FIELDS = frozenset({"prompt", "model", "seconds", "size", "input_reference"})
_GATEWAY_SIDE = (16, 4096)
_GATEWAY_SECONDS = (1, 60)


@dataclass(frozen=True)
class ReferenceInfo:
    """What was sent as ``input_reference``.

    Attributes:
        kind: ``file`` (uploaded image), ``file_id`` or ``image_url``.
        size: Width and height of an uploaded image; None for references by id or URL.
        content_type: Sniffed MIME type of an uploaded image.
    """

    kind: str
    size: tuple[int, int] | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class CreateSpec:
    """A validated create request."""

    prompt: str
    model: str
    seconds: int
    width: int
    height: int
    reference: ReferenceInfo | None = None

    @property
    def size(self) -> str:
        """``WxH`` as the API reports it."""
        return f"{self.width}x{self.height}"


@dataclass
class RawBody:
    """A request body read but not yet validated (faults may need the prompt first).

    Attributes:
        fields: Scalar or nested fields (JSON values, or strings from a form).
        files: Uploaded file parts by field name.
        is_json: Whether the body was JSON (types matter there; forms only carry strings).
    """

    fields: dict[str, object] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    is_json: bool = False

    @property
    def prompt_hint(self) -> str | None:
        """The prompt if it is a string, for matching fault rules before validation."""
        prompt = self.fields.get("prompt")
        return prompt if isinstance(prompt, str) else None


async def read_body(request: web.Request) -> RawBody:
    """Read a JSON, multipart or url-encoded body without validating it.

    Raises:
        ApiError: 400 when the body cannot be parsed.
    """
    content_type = request.content_type
    if content_type == "application/json":
        raw = await request.read()
        try:
            data = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly.)",
                code="invalid_json",
            ) from exc
        if not isinstance(data, dict):
            raise errors.invalid("The request body must be a JSON object.", code="invalid_json")
        return RawBody(fields=data, is_json=True)
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.post()
        except ValueError as exc:
            raise errors.invalid(f"Could not parse the form body: {exc}", code="invalid_body") from exc
        body = RawBody()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                body.files[key] = value.file.read()
                continue
            nested = _NESTED_FIELD.match(key)
            if nested:
                outer = body.fields.setdefault(nested.group(1), {})
                if isinstance(outer, dict):
                    outer[nested.group(2)] = value
            else:
                body.fields[key] = value
        return body
    if not await request.read():
        return RawBody()
    raise errors.invalid(
        f"Unsupported content type '{content_type}'. Send application/json or multipart/form-data.",
        code="unsupported_content_type",
    )


def validate_create(body: RawBody, dialect: Dialect) -> CreateSpec:
    """Validate a create request for the dialect.

    Raises:
        ApiError: 400 describing the first problem, like the real service.
    """
    if dialect is Dialect.OPENAI:
        _reject_unknown(body, _CREATE_FIELDS)
    prompt = _prompt(body)
    if dialect is Dialect.OPENAI:
        model = _openai_model(body)
        seconds = _openai_seconds(body)
        width, height = _openai_size(body, model)
    else:
        model = _gateway_model(body)
        seconds = _gateway_seconds(body)
        width, height = _gateway_size(body)
    reference = _reference(body, width, height)
    return CreateSpec(prompt, model, seconds, width, height, reference)


def validate_remix(body: RawBody, dialect: Dialect) -> str:
    """Validate a remix request and return its prompt.

    Raises:
        ApiError: 400 on a missing prompt or (OpenAI dialect) unknown fields.
    """
    if dialect is Dialect.OPENAI:
        _reject_unknown(body, frozenset({"prompt"}))
    return _prompt(body)


def _reject_unknown(body: RawBody, allowed: frozenset[str]) -> None:
    for name in [*body.fields, *body.files]:
        if name not in allowed:
            raise errors.invalid(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def _prompt(body: RawBody) -> str:
    prompt = body.fields.get("prompt")
    if prompt is None:
        raise errors.invalid(
            "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
        )
    if not isinstance(prompt, str):
        raise _wrong_type("prompt", "a string", prompt)
    if not prompt.strip():
        raise errors.invalid(
            "Invalid 'prompt': empty string. Expected a string with minimum length 1.",
            param="prompt",
            code="empty_string",
        )
    return prompt


def _string_field(body: RawBody, name: str, default: str) -> str:
    value = body.fields.get(name, default)
    if not isinstance(value, str):
        raise _wrong_type(name, "a string", value)
    return value


def _openai_model(body: RawBody) -> str:
    model = _string_field(body, "model", DEFAULT_MODEL)
    if not _MODEL.match(model):
        raise errors.invalid(
            f"Invalid value: '{model}'. Supported values are: 'sora-2' and 'sora-2-pro'.", param="model"
        )
    return model


def _openai_seconds(body: RawBody) -> int:
    value = body.fields.get("seconds", DEFAULT_SECONDS)
    if not isinstance(value, str):
        # The API takes the duration as a string enum; a JSON number is a type error.
        raise _wrong_type("seconds", "one of '4', '8', or '12'", value)
    if value not in OPENAI_SECONDS:
        raise errors.invalid(
            f"Invalid value: '{value}'. Supported values are: '4', '8', and '12'.", param="seconds"
        )
    return int(value)


def _openai_size(body: RawBody, model: str) -> tuple[int, int]:
    size = _string_field(body, "size", DEFAULT_SIZE)
    is_pro = bool((match := _MODEL.match(model)) and match.group("pro"))
    allowed = SORA2_PRO_SIZES if is_pro else SORA2_SIZES
    if size not in allowed:
        if size in SORA2_PRO_SIZES:
            message = f"Invalid size '{size}' for model '{model}'. Supported sizes: {', '.join(allowed)}."
        else:
            quoted = ", ".join(f"'{s}'" for s in SORA2_PRO_SIZES)
            message = f"Invalid value: '{size}'. Supported values are: {quoted}."
        raise errors.invalid(message, param="size")
    width, height = size.split("x")
    return int(width), int(height)


def _gateway_model(body: RawBody) -> str:
    model = _string_field(body, "model", DEFAULT_MODEL)
    if not model.strip():
        raise errors.invalid("Invalid 'model': empty string.", param="model", code="empty_string")
    return model


def _gateway_seconds(body: RawBody) -> int:
    value = body.fields.get("seconds", DEFAULT_SECONDS)
    low, high = _GATEWAY_SECONDS
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _wrong_type("seconds", "an integer number of seconds", value)
    text = str(value).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise errors.invalid(
            f"Invalid value for 'seconds': {value!r}. Expected a whole number from {low} to {high}.",
            param="seconds",
        )
    return int(text)


def _gateway_size(body: RawBody) -> tuple[int, int]:
    size = _string_field(body, "size", DEFAULT_SIZE)
    match = _SIZE.match(size.strip())
    low, high = _GATEWAY_SIDE
    if not match or not all(low <= int(side) <= high for side in match.groups()):
        raise errors.invalid(
            f"Invalid value for 'size': '{size}'. Expected WIDTHxHEIGHT, each side {low}-{high} pixels.",
            param="size",
        )
    return int(match.group(1)), int(match.group(2))


def _reference(body: RawBody, width: int, height: int) -> ReferenceInfo | None:
    if "input_reference" in body.files:
        return _uploaded_reference(body.files["input_reference"], width, height)
    value = body.fields.get("input_reference")
    if value is None:
        return None
    if isinstance(value, dict):
        keys = set(value)
        for kind in ("file_id", "image_url"):
            if keys == {kind}:
                if not isinstance(value[kind], str) or not value[kind]:
                    raise _wrong_type(f"input_reference.{kind}", "a non-empty string", value[kind])
                return ReferenceInfo(kind=kind)
        raise errors.invalid(
            "Invalid 'input_reference': expected an object with exactly one of 'file_id' or 'image_url'.",
            param="input_reference",
        )
    raise _wrong_type("input_reference", "an image file or an object with 'file_id' or 'image_url'", value)


def _uploaded_reference(data: bytes, width: int, height: int) -> ReferenceInfo:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, size = image.format, image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise errors.invalid(
            "Invalid file format for 'input_reference'. Supported formats: image/jpeg, image/png, image/webp.",
            param="input_reference",
            code="invalid_image_format",
        ) from exc
    content_type = _IMAGE_TYPES.get(image_format or "")
    if content_type is None:
        raise errors.invalid(
            f"Invalid file format for 'input_reference' ({image_format}). "
            "Supported formats: image/jpeg, image/png, image/webp.",
            param="input_reference",
            code="invalid_image_format",
        )
    if size != (width, height):
        raise errors.invalid(
            "Inpaint image must match the requested width and height",
            param="input_reference",
            code="invalid_value",
        )
    return ReferenceInfo(kind="file", size=size, content_type=content_type)


def _wrong_type(name: str, expected: str, value: object) -> errors.ApiError:
    got = {bool: "a boolean", int: "an integer", float: "a number", list: "an array", dict: "an object"}
    description = got.get(type(value), type(value).__name__)
    return errors.invalid(
        f"Invalid type for '{name}': expected {expected}, but got {description} instead.",
        param=name,
        code="invalid_type",
    )
