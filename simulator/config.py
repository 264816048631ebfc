"""Runtime configuration of the simulator, shared by every module."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import tempfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

#: Realistic content lifetime after completion (OpenAI: download links live one hour).
DEFAULT_CONTENT_LIFETIME_S = 3600.0
#: Delivery attempts per webhook event (first try plus retries) unless configured otherwise.
DEFAULT_WEBHOOK_ATTEMPTS = 5
MAX_WEBHOOK_ATTEMPTS = 20
WEBHOOK_SECRET_PREFIX = "whsec_"


class Dialect(StrEnum):
    """Which flavour of the Videos protocol the simulator speaks."""

    OPENAI = "openai"
    GATEWAY = "gateway"


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes the simulator's behaviour.

    Attributes:
        dialect: Protocol flavour (strict OpenAI or LiteLLM-style gateway).
        time_scale: Factor applied to every realistic duration (0.01 = 100x faster).
        seed: Seed for jitter and random failures, so runs are reproducible.
        api_key: The only accepted key, or None to accept any non-empty key.
        data_dir: Where rendered media is written and cached.
        fail_rate: Probability that a /v1 request fails with ``fail_code``.
        fail_code: HTTP status used for random failures.
        slow_ms: Delay added before every /v1 response.
        expire_after: Realistic content lifetime override in seconds (None = one hour).
        never_finish: Every job stays in progress forever.
        webhook_url: Loopback ``http(s)`` URL that receives signed ``video.completed``/``video.failed``
            events, or None for no webhooks.
        webhook_secret: Standard Webhooks signing secret (``whsec_<base64>``); required with a URL.
        webhook_attempts: Delivery attempts per event (the first plus retries with backoff).
    """

    dialect: Dialect = Dialect.OPENAI
    time_scale: float = 1.0
    seed: int = 0
    api_key: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "sora-sim")
    fail_rate: float = 0.0
    fail_code: int = 500
    slow_ms: float = 0.0
    expire_after: float | None = None
    never_finish: bool = False
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_attempts: int = DEFAULT_WEBHOOK_ATTEMPTS

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        if not 400 <= self.fail_code <= 599:
            raise ValueError("fail_code must be an HTTP error status (400-599)")
        if self.slow_ms < 0:
            raise ValueError("slow_ms must not be negative")
        if self.expire_after is not None and self.expire_after < 0:
            raise ValueError("expire_after must not be negative")
        check_webhook_settings(self.webhook_url, self.webhook_secret, self.webhook_attempts)

    def scaled(self, realistic_seconds: float) -> float:
        """Convert a realistic duration into simulator time."""
        return realistic_seconds * self.time_scale

    @property
    def content_lifetime(self) -> float:
        """How long content stays downloadable after completion, in simulator seconds."""
        if self.expire_after is not None:
            # An explicit override is honoured exactly so tests can make content expire quickly.
            return self.scaled(self.expire_after)
        # Never shorter than a second: a client needs a moment to fetch what it was told exists.
        return max(1.0, self.scaled(DEFAULT_CONTENT_LIFETIME_S))

    @property
    def poll_after_ms(self) -> int:
        """The ``openai-poll-after-ms`` hint: OpenAI suggests polling every 10-20 s."""
        return max(20, round(10_000 * self.time_scale))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback interface (the simulator serves and sends nowhere else)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret.

    Args:
        secret: ``whsec_`` followed by base64.

    Raises:
        ValueError: When the secret does not have that form.
    """
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("the webhook secret must look like whsec_<base64>")
    try:
        key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret must look like whsec_<base64>") from None
    if not key:
        raise ValueError("the webhook secret must not be empty")
    return key


def check_webhook_url(url: str) -> None:
    """Accept only absolute ``http(s)`` URLs on a loopback host.

    Raises:
        ValueError: Otherwise.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the webhook URL must be an absolute http(s) URL")
    if not is_loopback(parts.hostname):
        # The simulator is a local stand-in: it never sends traffic beyond this machine.
        raise ValueError(f"the webhook URL must point at a loopback host, not {parts.hostname!r}")


def check_webhook_settings(url: str | None, secret: str | None, attempts: int) -> None:
    """Validate a webhook configuration.

    Raises:
        ValueError: On a bad URL, a bad secret, a URL without a secret, or attempts out of range.
    """
    if url is not None:
        check_webhook_url(url)
        if secret is None:
            raise ValueError("a webhook URL needs a webhook secret (whsec_...)")
    if secret is not None:
        webhook_key(secret)
    if isinstance(attempts, bool) or not 1 <= attempts <= MAX_WEBHOOK_ATTEMPTS:
        raise ValueError(f"webhook attempts must be from 1 to {MAX_WEBHOOK_ATTEMPTS}")
