"""Which URLs the worker may fetch, and how it fetches them.

Two kinds of URL reach the worker from outside: reference-image URLs (from whoever starts a job) and
the download links a gateway puts in a status answer. Either can point at this host, the private
network or a cloud metadata service (``169.254.169.254``). This module is the one place that decides
whether such a URL may be fetched:

* ``https`` only (``http`` too when private networks are allowed, for local development);
* the host, when an allow-list is configured (download links), must be on it;
* every address the host resolves to must be public: no loopback, private, shared (CGNAT),
  link-local (metadata), multicast, reserved or unspecified address, IPv4 or IPv6, IPv4 addresses
  embedded in IPv6 (mapped, 6to4, Teredo, NAT64) judged as the IPv4 address they carry;
* redirects are followed by hand, at most :data:`DEFAULT_MAX_REDIRECTS`, and every hop is judged
  the same way.

The address check happens where the socket is opened (:func:`guarded_transport`): the name is
resolved once, every answer judged, and the connection made to a judged address, so a DNS answer
that changes between a check and the connect (DNS rebinding) cannot slip through. TLS still
verifies the certificate against the host name. Fetches through this transport ignore
``HTTP(S)_PROXY``: a proxy would resolve the name itself, out of reach of the check.

:func:`redact_url` is the one way a URL is shown in a message or a log line.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

DEFAULT_MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Kinds of address that ALLOW_PRIVATE_URLS opens up; link-local (cloud metadata), multicast, reserved
# and unspecified (0.0.0.0 reaches this host) stay refused even then.
_PRIVATE_KINDS = frozenset({"loopback", "private", "not globally routable"})


class UrlRefused(Exception):
    """A URL, or an address its host resolves to, may not be fetched; nothing was sent to it.

    Attributes:
        target: The URL (redacted) or ``host:port`` that was refused.
        reason: Why, e.g. ``resolves to 127.0.0.1 (loopback)``.
    """

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"{target}: {reason}")


def redact_url(url: object) -> str:
    """``url`` without its user info, query string and fragment: safe for messages, logs and history.

    Signed download links carry their credentials in the query string, and reference URLs may carry
    them in ``user:password@``. Text that is not an absolute URL (a file path) is returned unchanged.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not parts.netloc:
        return text
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def address_problem(address: str, *, allow_private: bool = False) -> str | None:
    """Why the worker may not connect to ``address`` (an IP literal), or ``None`` if it may.

    Args:
        address: An IPv4 or IPv6 address, optionally with an IPv6 zone (``fe80::1%eth0``).
        allow_private: Allow loopback, private and shared addresses (local development).
    """
    try:
        ip: _IP = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return "not an IP address"
    kind = _address_kind(ip)
    if kind is None or (allow_private and kind in _PRIVATE_KINDS):
        return None
    return kind


def _address_kind(ip: _IP) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _address_kind(embedded)
        if ip.is_site_local:
            return "private"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class UrlPolicy:
    """What may be fetched from URLs that come from outside.

    Attributes:
        allow_private: Allow ``http`` and loopback/private addresses (``ALLOW_PRIVATE_URLS``); for
            local development and tests against loopback servers only.
        allowed_hosts: When not empty, only these hosts (exact, or ``*.example.com`` for any
            subdomain); every redirect hop must be on the list too.
        max_redirects: Redirects followed before giving up.
    """

    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    def check_url(self, url: httpx.URL | str) -> httpx.URL:
        """Refuse a URL by its form: scheme, host, allow-list, and the address if it is an IP literal.

        Names are judged again, by the addresses they resolve to, when the connection is opened.

        Returns:
            The parsed URL.

        Raises:
            UrlRefused: If it may not be fetched.
        """
        shown = redact_url(url)
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UrlRefused(shown, "not a valid URL") from None
        schemes = ("https", "http") if self.allow_private else ("https",)
        if parsed.scheme not in schemes:
            raise UrlRefused(shown, f"only {' and '.join(schemes)} URLs are fetched")
        host = parsed.host.lower().rstrip(".")
        if not host:
            raise UrlRefused(shown, "the URL has no host")
        if self.allowed_hosts and not _host_allowed(host, self.allowed_hosts):
            raise UrlRefused(shown, f"host {host} is not on the allow-list")
        if _is_ip_literal(host):
            problem = address_problem(host, allow_private=self.allow_private)
            if problem is not None:
                raise UrlRefused(shown, f"{host} is a {problem} address")
        return parsed

    def next_hop(self, response: httpx.Response) -> httpx.URL | None:
        """Where a redirect points, checked; ``None`` when ``response`` is not a redirect.

        Raises:
            UrlRefused: If the target may not be fetched.
        """
        location = response.headers.get("location")
        if response.status_code not in REDIRECT_STATUSES or location is None:
            return None
        try:
            target = response.request.url.join(location)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UrlRefused(redact_url(response.request.url), "redirects to an invalid URL") from None
        return self.check_url(target)


def _host_allowed(host: str, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        pattern = entry.strip().lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def parse_host_list(raw: str) -> tuple[str, ...]:
    """Hosts from a comma-separated list (``DOWNLOAD_URL_ALLOWED_HOSTS``), lowercased.

    Raises:
        ValueError: For an entry that is not a host name or ``*.`` pattern.
    """
    hosts: list[str] = []
    for item in raw.split(","):
        entry = item.strip().lower().rstrip(".")
        if not entry:
            continue
        name = entry.removeprefix("*.")
        if not name or any(ch in name for ch in "/:@?#* ") or name.startswith("."):
            raise ValueError(f"{item.strip()!r} is not a host name (e.g. cdn.example.com or *.example.com)")
        hosts.append(entry)
    return tuple(hosts)


# --- connecting only to judged addresses ---------------------------------------------------------


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, judges every address, and connects only to a permitted one."""

    def __init__(self, policy: UrlPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = f"{host}:{port}"
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as err:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from err
        except OSError as err:
            raise httpcore.ConnectError(f"cannot resolve {host}: {err}") from err
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            problem = address_problem(address, allow_private=self._policy.allow_private)
            if problem is not None:
                # One bad answer refuses the name: an attacker's DNS may mix public and private ones.
                shown = host if host == address else f"{host} resolves to {address}, which"
                raise UrlRefused(target, f"{shown} is a {problem} address")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as err:
                last = err
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UrlRefused(path, "unix sockets are never fetched from")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(policy: UrlPolicy) -> httpx.AsyncHTTPTransport:
    """An httpx transport that connects only to addresses ``policy`` permits; no proxies, no retries."""
    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    # httpx has no public hook for the network backend; its pool is replaced by an identical one
    # (the same TLS defaults) that resolves and connects through the guard.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=20,
        retries=0,
        network_backend=_GuardedBackend(policy),
    )
    return transport


def guarded_client(policy: UrlPolicy, *, timeout: httpx.Timeout | float) -> httpx.AsyncClient:
    """A client for untrusted URLs: guarded transport, no redirects of its own, identity encoding."""
    return httpx.AsyncClient(
        transport=guarded_transport(policy),
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
    )


async def open_guarded(
    client: httpx.AsyncClient, url: str, policy: UrlPolicy, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    """``GET url`` through ``client`` (from :func:`guarded_client`), following checked redirects.

    Returns:
        The final response, streaming: the caller reads and closes it.

    Raises:
        UrlRefused: If the URL or any redirect may not be fetched, or there are too many redirects.
        httpx.HTTPError: On a transport failure.
    """
    current = policy.check_url(url)
    for hop in range(policy.max_redirects + 1):
        response = await client.send(client.build_request("GET", current, headers=headers), stream=True)
        try:
            target = policy.next_hop(response)
        except BaseException:
            await response.aclose()
            raise
        if target is None:
            return response
        await response.aclose()
        if hop == policy.max_redirects:
            break
        current = target
    raise UrlRefused(redact_url(url), f"more than {policy.max_redirects} redirects")
