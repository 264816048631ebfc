"""The URL guard: which addresses the worker may reach, checked where the socket opens, on every hop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from simulator.testing import RunningSimulator
from sora_temporal.errors import DownloadTooLarge, InsufficientDiskSpace, WrongMedia, is_retryable
from sora_temporal.netguard import (
    UrlPolicy,
    UrlRefused,
    address_problem,
    guarded_client,
    open_guarded,
    parse_host_list,
    redact_url,
)
from sora_temporal.settings import Settings
from sora_temporal.sora.errors import SoraUnsafeResponse

METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "not globally routable"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fec0::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 around the metadata address
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around the metadata address
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str, kind: str) -> None:
    assert address_problem(address) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_problem(address) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "::1", "fd12::1", "100.64.0.1"])
def test_private_networks_are_allowed_only_when_asked(address: str) -> None:
    assert address_problem(address) is not None
    assert address_problem(address, allow_private=True) is None


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "fe80::1", "0.0.0.0", "224.0.0.1", "::ffff:169.254.169.254"]
)
def test_metadata_multicast_and_unspecified_stay_refused_with_private_networks_allowed(address: str) -> None:
    assert address_problem(address, allow_private=True) is not None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/a.jpg", "only https"),
        ("ftp://example.com/a.jpg", "only https"),
        ("file:///etc/passwd", "only https"),
        ("https://127.0.0.1/a.jpg", "loopback"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://0.0.0.0:8080/", "unspecified"),
        ("https:///nohost", "no host"),
    ],
)
def test_urls_are_refused_by_their_form(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason):
        UrlPolicy().check_url(url)


def test_the_allow_list_takes_exact_hosts_and_subdomain_patterns() -> None:
    policy = UrlPolicy(allowed_hosts=parse_host_list("cdn.example.com, *.blob.example.net"))

    assert policy.check_url("https://cdn.example.com/v.mp4").host == "cdn.example.com"
    assert policy.check_url("https://a.b.blob.example.net/v.mp4").host == "a.b.blob.example.net"
    for refused in (
        "https://evil.example.com/v.mp4",
        "https://blob.example.net.evil.io/",
        "https://cdn.example.com.evil.io/",
    ):
        with pytest.raises(UrlRefused, match="allow-list"):
            policy.check_url(refused)


@pytest.mark.parametrize("entry", ["https://cdn.example.com", "cdn.example.com/path", "user@cdn", "*"])
def test_the_allow_list_refuses_entries_that_are_not_hosts(entry: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        parse_host_list(entry)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@cdn.example.com/v.mp4?sig=abc&exp=1#frag", "https://cdn.example.com/v.mp4"),
        ("https://cdn.example.com:8443/a/b.jpg?token=t", "https://cdn.example.com:8443/a/b.jpg"),
        ("http://[::1]:8080/x?y=z", "http://[::1]:8080/x"),
        ("photos/fox.jpg", "photos/fox.jpg"),
    ],
)
def test_redaction_removes_user_info_query_and_fragment(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# --- connecting: names are judged by the addresses they resolve to, at connect time --------------


@dataclass
class Canary:
    """A loopback TCP server that only counts connections; an HTTP answer is never needed."""

    port: int
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    found = Canary(port=0)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        found.requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


async def test_a_name_resolving_to_loopback_is_refused_before_any_connection(canary: Canary) -> None:
    # "localhost" passes every check of the URL's form; only its address gives it away, so the
    # refusal comes from the check where the socket would open (which also defeats DNS rebinding:
    # the connection goes to the address that was judged).
    async with guarded_client(UrlPolicy(), timeout=5) as client:
        with pytest.raises(UrlRefused, match=r"localhost resolves to .*loopback"):
            await client.get(f"https://localhost:{canary.port}/")

    assert canary.connections == 0


async def test_with_private_networks_allowed_loopback_is_reached(canary: Canary) -> None:
    policy = UrlPolicy(allow_private=True)
    async with guarded_client(policy, timeout=5) as client:
        response = await open_guarded(client, f"http://localhost:{canary.port}/", policy)
        await response.aread()
        await response.aclose()

    assert (response.status_code, response.content, canary.connections) == (200, b"ok", 1)


async def test_the_guarded_client_asks_for_no_content_encoding(canary: Canary) -> None:
    policy = UrlPolicy(allow_private=True)
    async with guarded_client(policy, timeout=5) as client:
        await client.get(f"http://127.0.0.1:{canary.port}/")

    assert b"\r\naccept-encoding: identity\r\n" in canary.requests[0].lower()


# --- redirects: every hop judged, at most three -----------------------------------------------------


async def test_a_redirect_to_the_metadata_address_is_refused(sora_sim: RunningSimulator) -> None:
    policy = UrlPolicy(allow_private=True)  # the simulator itself is on loopback
    before = sora_sim.stats()["file_host"]["redirects"]
    async with guarded_client(policy, timeout=5) as client:
        with pytest.raises(UrlRefused, match=r"169\.254\.169\.254.*link-local"):
            await open_guarded(client, sora_sim.redirect_url(METADATA, hops=2), policy)

    assert sora_sim.stats()["file_host"]["redirects"] - before == 2


@pytest.mark.parametrize(
    "location",
    ["https://127.0.0.1:8443/a.jpg", "http://cdn.example.com/a.jpg", "https://[::1]/", "//10.0.0.1/x"],
)
def test_a_redirect_hop_is_judged_like_the_first_url(location: str) -> None:
    request = httpx.Request("GET", "https://images.example.com/a.jpg")
    response = httpx.Response(302, headers={"Location": location}, request=request)

    with pytest.raises(UrlRefused):
        UrlPolicy().next_hop(response)


async def test_more_than_three_redirects_are_refused(sora_sim: RunningSimulator) -> None:
    policy = UrlPolicy(allow_private=True)
    target = f"{sora_sim.root_url}/_files/sample.jpg"
    async with guarded_client(policy, timeout=5) as client:
        ok = await open_guarded(client, sora_sim.redirect_url(target, hops=3), policy)
        await ok.aclose()
        with pytest.raises(UrlRefused, match="more than 3 redirects"):
            await open_guarded(client, sora_sim.redirect_url(target, hops=4), policy)

    assert ok.status_code == 200


# --- settings -------------------------------------------------------------------------------------


def test_fetch_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ALLOW_PRIVATE_URLS": "true",
            "DOWNLOAD_URL_ALLOWED_HOSTS": "cdn.example.com, *.blob.example.net",
            "DOWNLOAD_MAX_BYTES": "1000",
            "DOWNLOAD_MIN_FREE_BYTES": "0",
            "REFERENCE_IMAGE_MAX_PIXELS": "1000000",
        }
    )

    assert settings.download_url_policy == UrlPolicy(
        allow_private=True, allowed_hosts=("cdn.example.com", "*.blob.example.net")
    )
    assert settings.reference_url_policy == UrlPolicy(allow_private=True)
    assert (settings.download_max_bytes, settings.download_min_free_bytes) == (1000, 0)
    assert settings.reference_image_max_pixels == 1_000_000


def test_by_default_only_public_https_urls_are_fetched() -> None:
    settings = Settings.from_env({})

    assert settings.download_url_policy == UrlPolicy() == settings.reference_url_policy
    assert settings.download_max_bytes == 2 * 1024**3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALLOW_PRIVATE_URLS", "maybe"),
        ("DOWNLOAD_URL_ALLOWED_HOSTS", "https://cdn.example.com"),
        ("DOWNLOAD_MAX_BYTES", "0"),
        ("REFERENCE_IMAGE_MAX_PIXELS", "lots"),
    ],
)
def test_a_bad_fetch_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("err", "retryable"),
    [
        (SoraUnsafeResponse("x", code="invalid_video_id", should_retry=True), False),
        (UrlRefused("https://127.0.0.1/", "loopback"), False),
        (InsufficientDiskSpace("full", needed=10, free=1), True),
        (DownloadTooLarge("big"), False),
        (WrongMedia("png"), False),
    ],
)
def test_the_error_map_decides_on_refused_answers(err: Exception, retryable: bool) -> None:
    # A server's own retry hint does not make an unusable id or a refused link worth another try.
    assert is_retryable(err) is retryable
