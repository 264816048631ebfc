"""``object_pathname`` and ``safe_segment``: hostile ids cannot escape the prefix."""

from __future__ import annotations

import pytest

from sora_temporal.storage.base import object_pathname, safe_segment


def test_builds_prefix_workflow_and_file_segments() -> None:
    assert object_pathname("videos", "wf-123", "video_abc.mp4") == "videos/wf-123/video_abc.mp4"


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "..", "a/../../b", "/abs/path", "..\\..\\win"])
def test_workflow_id_cannot_add_or_climb_segments(hostile: str) -> None:
    pathname = object_pathname("videos", hostile, "v.mp4")

    prefix, workflow, filename = pathname.split("/")
    assert (prefix, filename) == ("videos", "v.mp4")
    assert workflow not in ("", ".", "..")
    assert "\\" not in workflow


def test_dot_dot_workflow_id_becomes_unnamed() -> None:
    assert object_pathname("videos", "..", "v.mp4") == "videos/unnamed/v.mp4"


def test_filename_slashes_become_dashes() -> None:
    assert object_pathname("videos", "wf", "a/b\\c.mp4") == "videos/wf/a-b-c.mp4"


def test_leading_and_trailing_dots_are_stripped() -> None:
    assert safe_segment("..hidden..") == "hidden"


def test_a_segment_with_nothing_safe_left_becomes_unnamed() -> None:
    assert safe_segment("../..") == "unnamed"
    assert safe_segment("") == "unnamed"


def test_non_ascii_and_spaces_collapse_to_single_dashes() -> None:
    assert safe_segment("vidéo  finale?.mp4") == "vid-o-finale-.mp4"


def test_segments_are_capped_at_128_characters() -> None:
    assert len(safe_segment("x" * 500)) == 128


def test_prefix_segments_are_sanitised_and_empty_ones_dropped() -> None:
    assert object_pathname("/media//../out/", "wf", "f.jpg") == "media/unnamed/out/wf/f.jpg"
