"""``LocalStorage``: atomic replacement, streaming progress and refusal of escaping pathnames."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from sora_temporal.errors import is_retryable
from sora_temporal.storage.base import StorageError
from sora_temporal.storage.local import LocalStorage

RandomFile = Callable[[str, int], tuple[Path, str]]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.startswith(".")]


async def test_stores_a_byte_identical_copy_under_the_pathname(
    tmp_path: Path, random_file: RandomFile
) -> None:
    source, digest = random_file("in.mp4", 3 * 1024 * 1024 + 17)
    storage = LocalStorage(tmp_path / "store")

    stored = await storage.put_file(source, "videos/wf/v.mp4", "video/mp4")

    target = tmp_path / "store" / "videos" / "wf" / "v.mp4"
    assert _sha256(target) == digest
    assert stored.byte_size == source.stat().st_size
    assert stored.content_type == "video/mp4"
    assert stored.pathname == "videos/wf/v.mp4"


async def test_urls_are_absolute_file_uris(tmp_path: Path, random_file: RandomFile) -> None:
    source, _ = random_file("in.jpg", 10)
    storage = LocalStorage(tmp_path / "store")

    stored = await storage.put_file(source, "a/b.jpg", "image/jpeg")

    expected = (tmp_path / "store" / "a" / "b.jpg").resolve().as_uri()
    assert stored.url == expected
    assert stored.download_url == expected


async def test_public_base_url_replaces_file_uris(tmp_path: Path, random_file: RandomFile) -> None:
    source, _ = random_file("in.webp", 10)
    storage = LocalStorage(tmp_path / "store", public_base_url="https://cdn.example/media/")

    stored = await storage.put_file(source, "a/thumb 1.webp", "image/webp")

    assert stored.url == "https://cdn.example/media/a/thumb%201.webp"


async def test_overwriting_replaces_the_previous_content(tmp_path: Path, random_file: RandomFile) -> None:
    first, _ = random_file("first", 1000)
    second, second_digest = random_file("second", 2000)
    storage = LocalStorage(tmp_path / "store")

    await storage.put_file(first, "x/v.mp4", "video/mp4")
    await storage.put_file(second, "x/v.mp4", "video/mp4")

    assert _sha256(tmp_path / "store" / "x" / "v.mp4") == second_digest
    assert [p.name for p in (tmp_path / "store" / "x").iterdir()] == ["v.mp4"]


async def test_progress_is_reported_in_chunks_up_to_the_file_size(
    tmp_path: Path, random_file: RandomFile
) -> None:
    source, _ = random_file("in", 5 * 1024 * 1024 + 1)
    seen: list[int] = []

    await LocalStorage(tmp_path / "store").put_file(source, "p.bin", "video/mp4", on_progress=seen.append)

    assert seen == sorted(seen)
    assert len(seen) > 1
    assert seen[-1] == 5 * 1024 * 1024 + 1


async def test_a_failed_write_leaves_neither_a_partial_object_nor_temp_files(
    tmp_path: Path, random_file: RandomFile
) -> None:
    source, _ = random_file("in", 4 * 1024 * 1024)
    root = tmp_path / "store"

    def explode(sent: int) -> None:
        raise RuntimeError("disk unplugged")

    with pytest.raises(RuntimeError):
        await LocalStorage(root).put_file(source, "v/new.mp4", "video/mp4", on_progress=explode)

    assert not (root / "v" / "new.mp4").exists()
    assert _leftovers(root) == []


async def test_a_failed_overwrite_keeps_the_previous_object_intact(
    tmp_path: Path, random_file: RandomFile
) -> None:
    original, original_digest = random_file("original", 2 * 1024 * 1024)
    replacement, _ = random_file("replacement", 4 * 1024 * 1024)
    storage = LocalStorage(tmp_path / "store")
    await storage.put_file(original, "v.mp4", "video/mp4")

    def explode_midway(sent: int) -> None:
        if sent >= 1024 * 1024:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        await storage.put_file(replacement, "v.mp4", "video/mp4", on_progress=explode_midway)

    assert _sha256(tmp_path / "store" / "v.mp4") == original_digest


@pytest.mark.parametrize(
    "pathname", ["../outside.mp4", "a/../../outside.mp4", "/etc/passwd", "a//b", "", "."]
)
async def test_pathnames_that_escape_or_are_malformed_are_refused(
    tmp_path: Path, random_file: RandomFile, pathname: str
) -> None:
    source, _ = random_file("in", 10)

    with pytest.raises(StorageError) as caught:
        await LocalStorage(tmp_path / "store").put_file(source, pathname, "video/mp4")

    assert is_retryable(caught.value) is False
    assert not (tmp_path / "outside.mp4").exists()


async def test_a_symlink_inside_root_cannot_redirect_writes_outside(
    tmp_path: Path, random_file: RandomFile
) -> None:
    root = tmp_path / "store"
    outside = tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    source, _ = random_file("in", 10)

    with pytest.raises(StorageError) as caught:
        await LocalStorage(root).put_file(source, "link/v.mp4", "video/mp4")

    assert is_retryable(caught.value) is False
    assert list(outside.iterdir()) == []


async def test_a_missing_source_file_is_not_retryable(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        await LocalStorage(tmp_path / "store").put_file(tmp_path / "nope.mp4", "v.mp4", "video/mp4")

    assert is_retryable(caught.value) is False


async def test_delete_removes_the_object(tmp_path: Path, random_file: RandomFile) -> None:
    source, _ = random_file("in", 10)
    storage = LocalStorage(tmp_path / "store")
    await storage.put_file(source, "d/v.mp4", "video/mp4")

    await storage.delete("d/v.mp4")

    assert not (tmp_path / "store" / "d" / "v.mp4").exists()


async def test_deleting_a_missing_object_succeeds(tmp_path: Path) -> None:
    await LocalStorage(tmp_path / "store").delete("never/there.mp4")


async def test_delete_refuses_pathnames_outside_root(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")

    with pytest.raises(StorageError):
        await LocalStorage(tmp_path / "store").delete("../victim.txt")

    assert victim.exists()
