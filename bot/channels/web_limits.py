"""Rate limits of the web chat API: per fan and per client address, answered with 429.

The counting is the ``limits`` library's (sliding window counters in memory, one process): a
limit is a string such as ``"20/minute"``, ``"5 per second"`` or ``"30/minute;300/hour"`` from
the settings (``web.messages_per_fan``, ``web.messages_per_ip``, ``web.requests_per_ip``,
``web.new_fans_per_ip``); ``None`` turns one off. Sliding window *counters*, not the moving
window: the moving window's memory storage never forgets a key (an empty list per fan that ever
wrote, forever, and a sweep over all of them every 10 ms), so a long-running daemon, or a client
dropping its cookie on every request, grew it without bound; a counter's key expires with its
window.

An IPv6 client is counted by its /64 (one subscriber's network: changing the last 64 bits is
free) and an IPv4-mapped address (``::ffff:203.0.113.5``, a dual-stack listener) as the IPv4
address, so neither is a way around a per-address limit. New fans are limited per address too
(``web.new_fans_per_ip``): a client that drops its cookie before every message would otherwise
fill the fans table at the per-address message rate. Addresses in
``web.rate_limit_exempt`` (loopback by default: tests, benchmarks, a local reverse proxy that
does not forward the client address) are never limited. Behind nginx the client address is the
one nginx forwards (the daemon trusts ``X-Forwarded-For`` from 127.0.0.1 only), and
deploy/nginx.conf limits with ``limit_req`` before the daemon sees anything.

A refusal carries ``Retry-After`` (whole seconds until the window lets one more through) and a
short message in Chinese and English the page can show as it is.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

TOO_MANY = "发得太快了，请稍等一下再试。Too many requests; please wait a moment and try again."


def check_rate(value: str | None) -> str | None:
    """A settings validator: ``value`` must parse as limits (``"20/minute"``,
    ``"30/minute;300/hour"``) or be null."""
    if value is None or str(value).strip().lower() in ("", "none", "null", "off"):
        return None
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate; write it like \"20/minute\" or \"5 per second\", "
            "or null for no limit"
        ) from None
    return value


def check_networks(values: list) -> list[str]:
    """A settings validator: every item must be an IP address or network (``10.0.0.0/8``)."""
    for value in values:
        try:
            ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return [str(v) for v in values]


@dataclass(frozen=True, slots=True)
class Throttled:
    """One request over a limit: how long to wait (``Retry-After``) and which limit it was."""

    retry_after: int
    limit: str


class WebRateLimits:
    """The four limits of the web API, checked before the work they protect."""

    def __init__(
        self,
        *,
        messages_per_fan: str | None = None,
        messages_per_ip: str | None = None,
        requests_per_ip: str | None = None,
        new_fans_per_ip: str | None = None,
        exempt: list[str] | tuple[str, ...] = ("127.0.0.1", "::1"),
    ):
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._per_fan = _items(messages_per_fan)
        self._messages_per_ip = _items(messages_per_ip)
        self._requests_per_ip = _items(requests_per_ip)
        self._new_fans_per_ip = _items(new_fans_per_ip)
        self._exempt = [ipaddress.ip_network(n, strict=False) for n in exempt]
        self._exempt_cache: dict[str, bool] = {}

    def exempt(self, address: str | None) -> bool:
        """Whether ``address`` (the client's, as the server sees it) is never limited."""
        if address is None:
            return False
        known = self._exempt_cache.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:  # not an address (a test client's "testclient"): limited
                known = False
            else:  # ::ffff:127.0.0.1 (a dual-stack listener) is 127.0.0.1
                mapped = getattr(ip, "ipv4_mapped", None)
                known = any(ip in net or (mapped is not None and mapped in net)
                            for net in self._exempt)
            if len(self._exempt_cache) > 10_000:
                self._exempt_cache.clear()
            self._exempt_cache[address] = known
        return known

    def request(self, address: str | None) -> Throttled | None:
        """Any /api/ request from ``address``."""
        if self.exempt(address):
            return None
        return self._hit(self._requests_per_ip, "ip", _client_key(address))

    def new_fan(self, address: str | None) -> Throttled | None:
        """A new fan id (a fan cookie) issued to ``address``."""
        if self.exempt(address):
            return None
        return self._hit(self._new_fans_per_ip, "new-fan-ip", _client_key(address))

    def message(self, address: str | None, fan: str | None, *, trusted: bool) -> Throttled | None:
        """A fan message (an engine turn); ``trusted`` callers (the API key, one server speaking
        for many fans) are limited per fan only."""
        if self.exempt(address):
            return None
        if not trusted:
            throttled = self._hit(self._messages_per_ip, "message-ip", _client_key(address))
            if throttled:
                return throttled
        if fan is None:
            return None
        return self._hit(self._per_fan, "message-fan", fan)

    def _hit(self, items: list[RateLimitItem], scope: str, key: str | None) -> Throttled | None:
        if key is None:
            return None
        for item in items:
            if not self._limiter.hit(item, scope, key):
                stats = self._limiter.get_window_stats(item, scope, key)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                return Throttled(wait, f"{scope} {item}")
        return None


def _items(rate: str | None) -> list[RateLimitItem]:
    return parse_many(rate) if check_rate(rate) else []


def _client_key(address: str | None) -> str | None:
    """Who is counted for ``address``: an IPv6 client by its /64, IPv4-mapped as IPv4."""
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an address (a test client's "testclient"): as it is
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
