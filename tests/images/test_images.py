"""Reference images: every common kind is fitted to exactly the requested size; bad ones are refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from sora_temporal.errors import ReferenceImageError
from sora_temporal.images import MAX_PIXELS, fetch_reference, fit_reference, read_local_reference
from sora_temporal.netguard import UrlPolicy


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _fitted(data: bytes, size: tuple[int, int] = (1280, 720)) -> Image.Image:
    ref = fit_reference(data, *size)
    assert ref.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(ref.data))
    assert image.format == "JPEG"
    return image


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGB", "JPEG"),
        ("RGBA", "PNG"),
        ("P", "PNG"),
        ("LA", "PNG"),
        ("CMYK", "JPEG"),
        ("I;16", "PNG"),
        ("L", "WEBP"),
    ],
)
def test_common_modes_are_converted_to_rgb_at_the_requested_size(mode: str, fmt: str) -> None:
    image = Image.new(mode, (300, 500))

    fitted = _fitted(_encode(image, fmt))

    assert fitted.size == (1280, 720)
    assert fitted.mode == "RGB"


def test_transparent_areas_are_flattened_onto_white() -> None:
    image = Image.new("RGBA", (64, 36), (0, 0, 0, 0))

    fitted = _fitted(_encode(image, "PNG"))

    assert min(fitted.getpixel((640, 360))) > 240  # type: ignore[arg-type]


def test_a_16_bit_image_keeps_its_tones() -> None:
    image = Image.new("I;16", (64, 36), 32768)

    fitted = _fitted(_encode(image, "PNG"))

    r, g, b = fitted.getpixel((640, 360))  # type: ignore[misc]
    assert 100 < r < 160 and r == g == b


def test_exif_rotation_is_applied_before_fitting() -> None:
    # A landscape image whose EXIF says "rotate 90": it is portrait once oriented.
    image = Image.new("RGB", (400, 200), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 200, 200))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6

    fitted = _fitted(_encode(image, "JPEG", exif=exif), size=(720, 1280))

    top = fitted.getpixel((360, 100))
    bottom = fitted.getpixel((360, 1180))
    assert top[2] > 200 and top[0] < 60  # type: ignore[index]
    assert bottom[0] > 200 and bottom[2] < 60  # type: ignore[index]


def test_bytes_that_are_not_an_image_are_refused() -> None:
    with pytest.raises(ReferenceImageError, match="not an image"):
        fit_reference(b"%PDF-1.7 definitely not a picture", 1280, 720)


def test_a_truncated_image_is_refused_as_corrupt() -> None:
    data = _encode(Image.effect_noise((400, 400), 50).convert("RGB"), "PNG")

    with pytest.raises(ReferenceImageError, match="corrupt"):
        fit_reference(data[: len(data) // 2], 1280, 720)


def test_a_decompression_bomb_is_refused_without_decoding_it() -> None:
    side = int(MAX_PIXELS**0.5) + 100
    bomb = _encode(Image.new("1", (side, side)), "PNG", optimize=True)
    assert len(bomb) < 2_000_000

    with pytest.raises(ReferenceImageError, match="decompression bomb"):
        fit_reference(bomb, 1280, 720)


def test_a_missing_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ReferenceImageError, match="does not exist"):
        read_local_reference(str(tmp_path / "nope.png"), 1000)


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(b"x" * 2000)

    with pytest.raises(ReferenceImageError, match="limit"):
        read_local_reference(str(path), 1000)


def test_a_file_that_claims_to_be_empty_is_read_no_further_than_the_limit() -> None:
    # /proc files report a size of 0 whatever they hold: the limit counts bytes read, not st_size.
    with pytest.raises(ReferenceImageError, match="limit"):
        read_local_reference("/proc/self/maps", 16)


async def test_the_worker_side_fetch_never_opens_a_local_path(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(_encode(Image.new("RGB", (64, 64)), "PNG"))

    with pytest.raises(ReferenceImageError, match="only http"):
        await fetch_reference(str(path), max_bytes=10_000, timeout=1)


async def test_an_unreachable_url_is_refused_quickly() -> None:
    with pytest.raises(ReferenceImageError, match="unreachable"):
        await fetch_reference(
            "http://127.0.0.1:9/ref.png", max_bytes=1000, timeout=2, policy=UrlPolicy(allow_private=True)
        )
