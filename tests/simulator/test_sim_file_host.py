"""The reference-image host: real images, stored files, bombs and redirect chains for URL fetchers."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from simulator.testing import RunningSimulator


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    ("name", "kind", "mime"),
    [
        ("sample.jpg", "JPEG", "image/jpeg"),
        ("sample.png", "PNG", "image/png"),
        ("sample.webp", "WEBP", "image/webp"),
    ],
)
def test_built_in_samples_are_real_images_of_the_asked_size(
    http: httpx.Client, api_sim: RunningSimulator, name: str, kind: str, mime: str
) -> None:
    response = http.get(api_sim.file_url(name, size="640x360"))

    assert response.status_code == 200
    assert response.headers["content-type"] == mime
    with Image.open(io.BytesIO(response.content)) as image:
        assert (image.format, image.size) == (kind, (640, 360))


def test_samples_default_to_1280x720(http: httpx.Client, api_sim: RunningSimulator) -> None:
    with Image.open(io.BytesIO(http.get(api_sim.file_url("sample.jpg")).content)) as image:
        assert image.size == (1280, 720)


def test_a_put_file_is_served_with_its_content_type(http: httpx.Client, api_sim: RunningSimulator) -> None:
    url = api_sim.put_file("page.jpg", b"<html>not a jpeg</html>", "text/html")

    response = http.get(url)

    assert url == api_sim.file_url("page.jpg")
    assert (response.headers["content-type"], response.content) == ("text/html", b"<html>not a jpeg</html>")


def test_the_type_query_overrides_the_content_type(http: httpx.Client, api_sim: RunningSimulator) -> None:
    response = http.get(api_sim.file_url("sample.png", type="image/jpeg"))

    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"\x89PNG")


def test_the_bomb_query_serves_a_double_gzip_body(http: httpx.Client, api_sim: RunningSimulator) -> None:
    with http.stream("GET", api_sim.file_url("sample.jpg", bomb=4 * 1024 * 1024)) as response:
        raw = b"".join(response.iter_raw())

    assert response.headers["content-encoding"] == "gzip, gzip"
    assert response.headers["content-type"] == "image/jpeg"
    assert len(zlib.decompress(zlib.decompress(raw, wbits=31), wbits=31)) == 4 * 1024 * 1024


def test_a_redirect_chain_takes_the_asked_number_of_hops(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    target = api_sim.file_url("sample.jpg", size="32x32")

    response = http.get(api_sim.redirect_url(target, hops=3), follow_redirects=True)

    assert response.status_code == 200
    assert [hop.status_code for hop in response.history] == [302, 302, 302]
    assert str(response.url) == target
    assert api_sim.stats()["file_host"] == {"files": 1, "redirects": 3}


def test_a_redirect_can_use_another_status(http: httpx.Client, api_sim: RunningSimulator) -> None:
    response = http.get(api_sim.redirect_url("http://127.0.0.1:9/x", hops=1, status=307))

    assert (response.status_code, response.headers["location"]) == (307, "http://127.0.0.1:9/x")


def test_a_redirect_needs_a_target(http: httpx.Client, api_sim: RunningSimulator) -> None:
    for query in (
        {},
        {"to": "gopher://x"},
        {"to": "http://x", "hops": "0"},
        {"to": "http://x", "status": "200"},
    ):
        assert http.get(f"{api_sim.root_url}/_redirect", params=query).status_code == 400


def test_an_unknown_file_is_not_found(http: httpx.Client, api_sim: RunningSimulator) -> None:
    response = http.get(api_sim.file_url("missing.jpg"))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_file_names_are_plain(http: httpx.Client, api_sim: RunningSimulator) -> None:
    response = http.put(
        f"{api_sim.root_url}/_sim/files/a%20b", content=b"x", headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 400


def test_reference_rules_match_the_file_name_and_any_rules_leave_the_host_alone(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    api_sim.add_fault("any", "error", status=503)
    api_sim.add_fault("reference", "error", status=500, match_prompt="broken")
    api_sim.put_file("broken.png", b"x", "image/png")

    assert http.get(api_sim.file_url("broken.png")).status_code == 500
    assert http.get(api_sim.file_url("sample.png")).status_code == 200


def test_hostile_rules_apply_to_the_host(http: httpx.Client, api_sim: RunningSimulator) -> None:
    api_sim.add_fault("reference", "wrong_media", content_type="image/jpeg", count=1)

    response = http.get(api_sim.file_url("sample.jpg"))

    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.lower().startswith(b"<!doctype html")


def test_reset_forgets_files_and_counts(http: httpx.Client, api_sim: RunningSimulator) -> None:
    api_sim.put_file("gone.txt", b"x", "text/plain")
    http.get(api_sim.file_url("gone.txt"))

    api_sim.reset()

    assert http.get(api_sim.file_url("gone.txt")).status_code == 404
    assert api_sim.stats()["file_host"] == {"files": 1, "redirects": 0}
