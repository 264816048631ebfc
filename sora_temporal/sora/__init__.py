"""The project's own client for the OpenAI Videos (Sora) protocol and its gateways."""

from __future__ import annotations

from sora_temporal.sora.client import CONTENT_VARIANTS, DEFAULT_BASE_URL, SoraClient
from sora_temporal.sora.errors import (
    SoraAuthenticationError,
    SoraConflict,
    SoraConnectionError,
    SoraError,
    SoraInvalidRequest,
    SoraNotFound,
    SoraProtocolError,
    SoraRateLimited,
    SoraServerError,
    SoraTimeout,
    classify,
)
from sora_temporal.sora.models import (
    AuthStyle,
    ContentStream,
    ReferenceImage,
    Retrieved,
    Video,
    VideoPage,
)

__all__ = [
    "CONTENT_VARIANTS",
    "DEFAULT_BASE_URL",
    "AuthStyle",
    "ContentStream",
    "ReferenceImage",
    "Retrieved",
    "SoraAuthenticationError",
    "SoraClient",
    "SoraConflict",
    "SoraConnectionError",
    "SoraError",
    "SoraInvalidRequest",
    "SoraNotFound",
    "SoraProtocolError",
    "SoraRateLimited",
    "SoraServerError",
    "SoraTimeout",
    "Video",
    "VideoPage",
    "classify",
]
