"""Read-write tokens of the emulated store: parse one, make one up, check the one a request presents.

A token is ``vercel_blob_rw_<storeId>_<secret>``. The parsing rule is the SDK's (``vercel.blob``'s
``store_from_read_write_token``), applied to the stripped token, as the product's own parser does;
it is written out here so the emulator depends on neither (a test keeps the three in agreement).
"""

from __future__ import annotations

import hmac
import random
import re
import string

from aiohttp import web

from simulator.blob.errors import ApiError

TOKEN_PREFIX = "vercel_blob_rw_"
_STORE_ID = re.compile(r"[A-Za-z0-9-]+")


def store_id_from_token(token: str) -> str:
    """``<storeId>`` of ``vercel_blob_rw_<storeId>_<secret>``.

    The store id runs to the first ``_`` after the prefix and is letters, digits and ``-``; the
    secret is the rest and must not be blank (nor only underscores). Surrounding whitespace is
    ignored.

    Raises:
        ValueError: Not a read-write token.
    """
    token = token.strip()
    store_id, separator, secret = token.removeprefix(TOKEN_PREFIX).partition("_")
    store_id = store_id.strip()
    if (
        not token.startswith(TOKEN_PREFIX)
        or not separator
        or not _STORE_ID.fullmatch(store_id)
        or not secret.strip().strip("_")
    ):
        raise ValueError("token must look like vercel_blob_rw_<storeId>_<secret>")
    return store_id


def new_token() -> str:
    """A fresh read-write token for a new emulated store."""
    store_id = "".join(random.choices(string.ascii_letters + string.digits, k=16))
    secret = "".join(random.choices(string.ascii_letters + string.digits, k=30))
    return f"{TOKEN_PREFIX}{store_id}_{secret}"


def secrets_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, as a real auth check would do."""
    return hmac.compare_digest(given.encode(), expected.encode())


def check_auth(request: web.Request, token: str) -> None:
    """Accept ``authorization: Bearer <token>``; refuse anything else as the service does.

    Raises:
        ApiError: 403 ``forbidden``, without or with a wrong token.
    """
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if not header:
        raise ApiError(403, "forbidden", "Access denied, please provide a valid token for this resource.")
    if scheme.lower() != "bearer" or not secrets_equal(credential.strip(), token):
        raise ApiError(403, "forbidden", "Invalid token")


__all__ = ["TOKEN_PREFIX", "check_auth", "new_token", "secrets_equal", "store_id_from_token"]
