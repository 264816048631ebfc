"""``GET /``: a page to watch and steer your videos, over the same endpoints and keys as any client.

The page is one server-rendered template plus a static script and stylesheet (no build step, nothing
fetched from elsewhere). It holds no data of its own: the script asks for the API key, keeps it in the
tab's ``sessionStorage`` and reads and writes through ``/v1/videos`` with it, so it sees exactly what
that key sees. The page itself needs no key; every answer carries a strict Content-Security-Policy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.create_request import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE
from api.errors import not_found
from api.services import Services, services
from api.store import workflow_id_for
from sora_temporal.validation import MAX_PROMPT_CHARS, SORA_SECONDS, SORA_SIZES

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# The only files served under /static/: a fixed list, so no request can name another file.
STATIC_TYPES = {
    "page.js": "text/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# Public Vercel blobs live on per-store hosts under this domain; completed videos are then played
# straight from there (the API hands out the blob URL).
PUBLIC_BLOB_HOSTS = "https://*.public.blob.vercel-storage.com"

router = APIRouter(include_in_schema=False)
Svc = Annotated[Services, Depends(services)]

_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class StaticFile:
    """A file under ``api/static``, read once."""

    body: bytes
    content_type: str
    etag: str


@cache
def static_file(name: str) -> StaticFile:
    """The named static file (only those in :data:`STATIC_TYPES`).

    Raises:
        KeyError: ``name`` is not one of them.
    """
    content_type = STATIC_TYPES[name]
    body = (STATIC / name).read_bytes()
    return StaticFile(body, content_type, hashlib.sha256(body).hexdigest()[:16])


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def media_sources(svc: Services) -> list[str]:
    """Where the page may play videos from: itself, and wherever the API's ``url`` links point."""
    sources = ["'self'"]
    extra = [
        _origin(svc.api.public_base_url) if svc.api.public_base_url else None,
        _origin(getattr(svc.storage, "public_base_url", None) or ""),
        PUBLIC_BLOB_HOSTS if getattr(svc.storage, "access", None) == "public" else None,
    ]
    sources += [source for source in dict.fromkeys(extra) if source]
    return sources


def content_security_policy(svc: Services) -> str:
    """The page's policy: its own script, style and API only; no inline code, no framing.

    ``img-src`` also allows ``blob:``: thumbnails are fetched with the key (an ``<img>`` cannot send
    one) and shown from an object URL.
    """
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob:",
            "media-src " + " ".join(media_sources(svc)),
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def page_config(svc: Services) -> dict[str, Any]:
    """What the script needs to know, embedded in the page as JSON (no secrets)."""
    ui = svc.settings.temporal_ui_url.rstrip("/")
    namespace = quote(svc.settings.temporal_namespace, safe="")
    return {
        "workflowsUrl": f"{ui}/namespaces/{namespace}/workflows/",
        # The one mapping of video ids to workflow ids (api.store): video_<hex> runs as <prefix><hex>.
        "videoIdPrefix": "video_",
        "workflowIdPrefix": workflow_id_for("video_"),
        "models": {model: list(sizes) for model, sizes in SORA_SIZES.items()},
        "seconds": [str(s) for s in SORA_SECONDS],
        "defaults": {"model": DEFAULT_MODEL, "size": DEFAULT_SIZE, "seconds": DEFAULT_SECONDS},
        "maxPromptChars": MAX_PROMPT_CHARS,
        "maxReferenceBytes": svc.settings.max_reference_image_bytes,
    }


def _security_headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


@router.get("/")
async def page(svc: Svc) -> HTMLResponse:
    """The page; it asks for the API key itself, so it is served without one."""
    config = page_config(svc)
    html = _templates.get_template("page.html").render(
        config=config,
        models=list(config["models"]),
        seconds=config["seconds"],
        defaults=config["defaults"],
        max_prompt_chars=MAX_PROMPT_CHARS,
        version={name: static_file(name).etag for name in STATIC_TYPES},
    )
    headers = _security_headers(content_security_policy(svc))
    headers["Cache-Control"] = "no-cache"
    return HTMLResponse(html, headers=headers)


@router.get("/static/{name}")
async def static(name: str, request: Request) -> Response:
    """The page's script, stylesheet and icon; revalidated by ETag (their URLs carry it too)."""
    if name not in STATIC_TYPES:
        raise not_found("file")
    found = static_file(name)
    headers = {
        "ETag": f'"{found.etag}"',
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)
