"""One rule for Blob read-write tokens: the SDK's, followed by the product and, separately, the emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from vercel.blob import BlobError

# The SDK's own parser (private, but the SDK is pinned): the authority on what a token looks like.
from vercel.blob._internal.credentials import store_from_read_write_token

from simulator.blob import tokens as emulator_tokens
from sora_temporal.storage import vercel as product_storage
from sora_temporal.storage.base import StorageError

TOKENS = [
    "vercel_blob_rw_AbCdEf123_secret",
    "vercel_blob_rw_abc-DEF-9_s3cr3t",
    "vercel_blob_rw_abc_secret_with_underscores",
    "vercel_blob_rw_abc__leading_underscore",
    "vercel_blob_rw_abc_odd.chars/+=~",
    "vercel_blob_rw_abc_-",
    "vercel_blob_rw_abc_sec\tret",
    "  vercel_blob_rw_abc_secret\n",
    "vercel_blob_rw_ abc_secret",
    "vercel_blob_rw_abc_",
    "vercel_blob_rw_abc___",
    "vercel_blob_rw_abc_ _ ",
    "vercel_blob_rw_abc",
    "vercel_blob_rw__secret",
    "vercel_blob_rw_ _secret",
    "vercel_blob_rw_ab.c_secret",
    "vercel_blob_rw_ab c_secret",
    "vercel_blob_rw_ab\x00c_secret",
    "vercel_blob_ro_abc_secret",
    "VERCEL_BLOB_RW_abc_secret",
    "sk-secret-value",
    "",
]


def _read(parse: Callable[[str], str], token: str, refusal: type[Exception]) -> str | None:
    """The store id ``parse`` reads from ``token``, or ``None`` when it refuses the token."""
    try:
        return parse(token)
    except refusal:
        return None


def _sdk(token: str) -> str | None:
    # The product and the emulator strip the token first (the product hands the SDK the stripped one).
    return _read(store_from_read_write_token, token.strip(), BlobError)


def _product(token: str) -> str | None:
    return _read(product_storage.store_id_from_token, token, StorageError)


def _emulator(token: str) -> str | None:
    return _read(emulator_tokens.store_id_from_token, token, ValueError)


@pytest.mark.parametrize("token", TOKENS)
def test_the_product_and_the_emulator_read_a_token_as_the_sdk_does(token: str) -> None:
    assert _product(token) == _emulator(token) == _sdk(token)


def test_the_list_holds_tokens_that_are_accepted_and_tokens_that_are_refused() -> None:
    readings = {_sdk(token) for token in TOKENS}

    assert None in readings
    assert {"AbCdEf123", "abc-DEF-9", "abc"} <= readings


def test_a_token_the_emulator_makes_up_is_one_the_product_and_the_sdk_accept() -> None:
    token = emulator_tokens.new_token()

    assert _product(token) == _emulator(token) == _sdk(token) is not None
