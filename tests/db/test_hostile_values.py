"""Values the database cannot take as they are: cleaned and cut to fit, or refused up front.

On PostgreSQL a NUL character or a value longer than its column raises ``DataError`` on every
attempt; SQLite takes both, so every test here runs on both databases.
"""

from __future__ import annotations

import pytest

from sora_temporal.db import MAX_TEXT_CHARS, VideoCatalog, clean_text
from sora_temporal.errors import is_retryable
from sora_temporal.types import JobStatus, SaveInput, VideoRequest
from sora_temporal.validation import InvalidVideoRequest
from support import migrated_engine

REQUEST = VideoRequest(prompt="a heron at dawn")


def _catalog(url: str) -> VideoCatalog:
    return VideoCatalog(migrated_engine(url))


def test_a_gateways_long_and_nul_laden_error_is_saved_cleaned_and_cut_to_its_column(
    database_url: str,
) -> None:
    catalog = _catalog(database_url)
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.SUBMITTING, request=REQUEST))
    code = "upstream_provider_error_" * 9  # 216 characters; the column holds 128
    message = "Video generation failed\x00 at frame \x00\x0012.\n" + "x" * 100_000

    catalog.save(
        SaveInput(workflow_id="wf-1", status=JobStatus.FAILED, error_code=code, error_message=message)
    )

    row = catalog.get("wf-1")
    assert row is not None and row.status == "failed"
    assert row.error_code is not None and len(row.error_code) == 128 and row.error_code.startswith(code[:100])
    assert row.error_message is not None and len(row.error_message) == MAX_TEXT_CHARS
    assert row.error_message.startswith("Video generation failed at frame 12.\n")


def test_control_characters_and_lone_surrogates_are_dropped_but_text_is_kept() -> None:
    assert clean_text("a\x00b\x1bc\x7fd\x85e\tf\ng\rh\ud800i") == "abcde\tf\ng\rh?i"
    assert clean_text("é視頻✓") == "é視頻✓"
    assert clean_text("x" * 10, 5) == "xxxx…"


def test_a_workflow_id_that_does_not_fit_its_column_is_refused_not_cut(database_url: str) -> None:
    catalog = _catalog(database_url)

    with pytest.raises(InvalidVideoRequest) as refused:
        catalog.save(SaveInput(workflow_id="w" * 300, status=JobStatus.SUBMITTING, request=REQUEST))

    assert refused.value.param == "workflow_id" and not is_retryable(refused.value)
    assert catalog.recent() == []


def test_a_video_id_with_a_nul_is_refused_not_altered(database_url: str) -> None:
    catalog = _catalog(database_url)

    with pytest.raises(InvalidVideoRequest):
        catalog.claim("wf-1", "video_\x001")


def test_request_fields_over_their_columns_are_cut_to_fit(database_url: str) -> None:
    catalog = _catalog(database_url)
    odd = VideoRequest(prompt="p\x00" * 3000, model="m" * 300, size="9" * 40, seconds=10**12)

    catalog.save(
        SaveInput(workflow_id="wf-1", status=JobStatus.FAILED, request=odd, error_code="invalid_request")
    )

    row = catalog.get("wf-1")
    assert row is not None
    assert (row.prompt, len(row.model), len(row.size), row.seconds) == ("p" * 3000, 128, 32, 2**31 - 1)
