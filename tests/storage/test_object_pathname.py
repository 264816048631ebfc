"""``object_pathname``, ``unique_name`` and ``safe_segment``: hostile ids cannot escape the prefix,
and two different ids never share a name."""

from __future__ import annotations

import pytest

from sora_temporal.storage.base import object_pathname, safe_segment, unique_name


def test_builds_prefix_workflow_and_file_segments() -> None:
    assert object_pathname("videos", "wf-123", "video_abc", "mp4") == "videos/wf-123/video_abc.mp4"


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "..", "a/../../b", "/abs/path", "..\\..\\win"])
def test_workflow_id_cannot_add_or_climb_segments(hostile: str) -> None:
    pathname = object_pathname("videos", hostile, "v", "mp4")

    prefix, workflow, filename = pathname.split("/")
    assert (prefix, filename) == ("videos", "v.mp4")
    assert workflow not in ("", ".", "..")
    assert "\\" not in workflow


def test_dot_dot_workflow_id_becomes_unnamed_plus_its_hash() -> None:
    pathname = object_pathname("videos", "..", "v", "mp4")

    assert pathname.startswith("videos/unnamed~") and pathname.endswith("/v.mp4")


def test_filename_slashes_become_dashes_and_the_extension_stays_last() -> None:
    pathname = object_pathname("videos", "wf", "a/b\\c", "mp4")

    assert pathname.startswith("videos/wf/a-b-c~") and pathname.endswith(".mp4")


@pytest.mark.parametrize("value", ["wf-123", "video_68d7512d07848190", "a.b_c-d", "x" * 128])
def test_plain_ids_stay_readable(value: str) -> None:
    assert unique_name(value) == value


def test_ids_that_sanitise_alike_get_different_names() -> None:
    names = {unique_name(v) for v in ("a/b", "a?b", "a b", "a-b", "a:b", "a@b", "A-b", "a\\b")}

    assert len(names) == 8


def test_long_ids_sharing_a_prefix_get_different_names() -> None:
    first, second = unique_name("x" * 200 + "1"), unique_name("x" * 200 + "2")

    assert first != second and len(first) <= 128 and len(second) <= 128


def test_a_hashed_name_can_never_equal_a_readable_one() -> None:
    hashed = unique_name("a/b")

    assert "~" in hashed and unique_name(hashed) != hashed


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
    assert object_pathname("/media//../out/", "wf", "f", "jpg") == "media/unnamed/out/wf/f.jpg"
