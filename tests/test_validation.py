"""The one set of bounds on a request: finite timing, a documented workflow id rule, and how a
reference image may be handed over. Used by the starter, the workflow, the API and submit alike."""

from __future__ import annotations

import base64
import math

import pytest

from sora_temporal.types import ReferenceImageInput, VideoRequest
from sora_temporal.validation import (
    INLINE_REFERENCE_MAX_BYTES,
    MAX_DEADLINE_SECONDS,
    MAX_POLL_INTERVAL_SECONDS,
    MIN_DEADLINE_SECONDS,
    MIN_POLL_INTERVAL_SECONDS,
    InvalidVideoRequest,
    parse_size,
    validate_reference,
    validate_timing,
    validate_workflow_id,
    validate_workflow_input,
)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e12, 1e-9, 0, -5, "5", True, None])
def test_a_poll_interval_that_is_not_a_finite_bounded_number_is_refused(value: object) -> None:
    with pytest.raises(InvalidVideoRequest) as refused:
        validate_timing(value, 300)  # type: ignore[arg-type]

    assert refused.value.param == "poll_interval"


@pytest.mark.parametrize("value", [math.nan, math.inf, 1e12, 1e-9, 9.99, MAX_DEADLINE_SECONDS + 1])
def test_a_deadline_that_is_not_a_finite_bounded_number_is_refused(value: float) -> None:
    with pytest.raises(InvalidVideoRequest) as refused:
        validate_timing(5, value)

    assert refused.value.param == "deadline"


def test_the_documented_bounds_themselves_are_accepted() -> None:
    validate_timing(MIN_POLL_INTERVAL_SECONDS, MIN_DEADLINE_SECONDS)
    validate_timing(MAX_POLL_INTERVAL_SECONDS, MAX_DEADLINE_SECONDS)
    validate_timing(5, 300, 1)


@pytest.mark.parametrize("polls", [0, -1, 10**9, 2.5, True])
def test_max_polls_per_run_is_a_bounded_whole_number(polls: object) -> None:
    with pytest.raises(InvalidVideoRequest):
        validate_timing(5, 300, polls)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "size", [" 1280x720", "1280x720 ", "1280x720\n", "1280 x720", "\u0661\u0662\u0668\u0660x720"]
)
def test_a_size_with_whitespace_or_foreign_digits_is_refused(size: str) -> None:
    with pytest.raises(InvalidVideoRequest, match="size must look like 1280x720"):
        parse_size(size)


@pytest.mark.parametrize("workflow_id", ["video-1", "api-0123abcd", "a", "job.2026:11@host_1", "A" * 128])
def test_workflow_ids_within_the_rule_are_accepted(workflow_id: str) -> None:
    validate_workflow_id(workflow_id)


@pytest.mark.parametrize(
    "workflow_id",
    [
        "",
        "x" * 129,
        "w" * 300,
        "vidéo-1",
        "視頻",
        "a b",
        "a/b",
        "../x",
        ".hidden",
        "-x",
        "x\n",
        "x\x00",
        "a?b",
    ],
)
def test_workflow_ids_outside_the_rule_are_refused(workflow_id: str) -> None:
    with pytest.raises(InvalidVideoRequest) as refused:
        validate_workflow_id(workflow_id)

    assert refused.value.param == "workflow_id"
    assert "ASCII" in refused.value.message


def test_a_prompt_with_a_nul_is_refused() -> None:
    with pytest.raises(InvalidVideoRequest, match="control characters"):
        validate_workflow_input("wf-1", VideoRequest(prompt="a cat\x00"))


@pytest.mark.parametrize(
    "legacy", ["photo.jpg", "/etc/passwd", "/proc/self/pagemap", "file:///etc/passwd", "~/x.png"]
)
def test_a_path_named_in_the_input_is_refused(legacy: str) -> None:
    with pytest.raises(InvalidVideoRequest) as refused:
        validate_reference(None, legacy)

    assert refused.value.code == "invalid_reference_image"
    assert "never opens a path" in refused.value.message


def test_an_http_url_is_still_accepted_in_either_form() -> None:
    validate_reference(None, "https://example.com/a.jpg")
    validate_reference(ReferenceImageInput(url="https://example.com/a.jpg"))


def test_inline_bytes_over_the_cap_are_refused_before_decoding() -> None:
    too_big = base64.b64encode(b"\xff" * (INLINE_REFERENCE_MAX_BYTES + 1)).decode()

    with pytest.raises(InvalidVideoRequest, match="at most"):
        validate_reference(ReferenceImageInput(jpeg_base64=too_big))


@pytest.mark.parametrize(
    "reference",
    [
        ReferenceImageInput(),
        ReferenceImageInput(jpeg_base64="aGk=", url="https://example.com/a.jpg"),
        ReferenceImageInput(jpeg_base64="not base64!"),
        ReferenceImageInput(jpeg_base64=""),
        ReferenceImageInput(storage_key="videos/wf/secret.mp4"),
        ReferenceImageInput(storage_key="references/../sora.db"),
        ReferenceImageInput(url="http://exa mple.com/a.jpg"),
    ],
)
def test_malformed_hand_overs_are_refused(reference: ReferenceImageInput) -> None:
    with pytest.raises(InvalidVideoRequest):
        validate_reference(reference)


def test_a_stored_copy_is_named_by_its_content_hash() -> None:
    validate_reference(ReferenceImageInput(storage_key=f"references/{'ab' * 32}.jpg"))
