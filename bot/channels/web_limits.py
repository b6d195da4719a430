"""Rate limits of the web chat API: per fan and per client address, answered with 429.

The counting is the ``limits`` library's (moving windows in memory, one process): a limit is a
string such as ``"20/minute"`` or ``"5 per second"`` from the settings (``web.messages_per_fan``,
``web.messages_per_ip``, ``web.requests_per_ip``); ``None`` turns one off. Addresses in
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

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

TOO_MANY = "发得太快了，请稍等一下再试。Too many requests; please wait a moment and try again."


def check_rate(value: str | None) -> str | None:
    """A settings validator: ``value`` must parse as a limit (``"20/minute"``) or be null."""
    if value is None or str(value).strip().lower() in ("", "none", "null", "off"):
        return None
    try:
        parse(value)
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
    """The three limits of the web API, checked before the work they protect."""

    def __init__(
        self,
        *,
        messages_per_fan: str | None = None,
        messages_per_ip: str | None = None,
        requests_per_ip: str | None = None,
        exempt: list[str] | tuple[str, ...] = ("127.0.0.1", "::1"),
    ):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_fan = _item(messages_per_fan)
        self._messages_per_ip = _item(messages_per_ip)
        self._requests_per_ip = _item(requests_per_ip)
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
            else:
                known = any(ip in net for net in self._exempt)
            if len(self._exempt_cache) > 10_000:
                self._exempt_cache.clear()
            self._exempt_cache[address] = known
        return known

    def request(self, address: str | None) -> Throttled | None:
        """Any /api/ request from ``address``."""
        if self.exempt(address):
            return None
        return self._hit(self._requests_per_ip, "ip", address)

    def message(self, address: str | None, fan: str | None, *, trusted: bool) -> Throttled | None:
        """A fan message (an engine turn); ``trusted`` callers (the API key, one server speaking
        for many fans) are limited per fan only."""
        if self.exempt(address):
            return None
        if not trusted:
            throttled = self._hit(self._messages_per_ip, "message-ip", address)
            if throttled:
                return throttled
        if fan is None:
            return None
        return self._hit(self._per_fan, "message-fan", fan)

    def _hit(self, item: RateLimitItem | None, scope: str, key: str | None) -> Throttled | None:
        if item is None or key is None:
            return None
        if self._limiter.hit(item, scope, key):
            return None
        stats = self._limiter.get_window_stats(item, scope, key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return Throttled(wait, f"{scope} {item}")


def _item(rate: str | None) -> RateLimitItem | None:
    return parse(rate) if check_rate(rate) else None
