"""Bearer keys: who is calling, as an owner id that is never the key itself."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from api.errors import unauthorized

_OWNER_DOMAIN = b"sora-temporal api key owner v1\x00"


def owner_of(key: str) -> str:
    """The id under which a key's jobs are stored: a SHA-256 of the key, so the table holds no key."""
    return hashlib.sha256(_OWNER_DOMAIN + key.encode()).hexdigest()


class KeyRing:
    """The accepted keys.

    Args:
        keys: Every accepted key (``API_KEYS`` and ``API_KEYS_FILE``).

    Raises:
        ValueError: No key is configured; the API refuses to run open.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [k.encode() for k in keys if k]
        if not self._keys:
            raise ValueError("no API keys configured: set API_KEYS or API_KEYS_FILE")

    def owner(self, authorization: str | None) -> str:
        """The owner id of the key in an ``Authorization: Bearer <key>`` header.

        Every configured key is compared, in constant time each, so the time taken says nothing
        about which key (or how much of one) matched.

        Raises:
            ApiError: 401 for a missing, malformed or unknown key.
        """
        scheme, _, presented = (authorization or "").partition(" ")
        candidate = presented.strip().encode()
        if scheme.lower() != "bearer" or not candidate:
            raise unauthorized()
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(key, candidate)
        if not matched:
            raise unauthorized()
        return owner_of(candidate.decode())
