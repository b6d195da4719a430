"""Where and when a message is read: now, the time zone, the locale's conventions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = ["Context", "make_context"]

# Locales that write 5/3 as day/month; every other locale reads it as month/day.
_DAY_FIRST = {"en-gb", "en-au", "en-nz", "en-ie", "en-in", "en-za", "en-sg", "en-hk", "zh-hk",
              "zh-mo", "zh-hant-hk"}
# Region a phone number without a country code is read in.
_REGION = {"zh": "CN", "zh-cn": "CN", "zh-hans": "CN", "zh-sg": "SG", "zh-tw": "TW",
           "zh-hant": "TW", "zh-hk": "HK", "zh-hant-hk": "HK", "zh-mo": "MO", "en": "US",
           "en-us": "US", "en-gb": "GB", "en-au": "AU", "en-nz": "NZ", "en-ie": "IE",
           "en-ca": "CA", "en-in": "IN", "en-sg": "SG", "en-hk": "HK", "en-za": "ZA"}


@dataclass(frozen=True, slots=True)
class Context:
    now: dt.datetime  # aware, in ``tz``
    tz: dt.tzinfo
    day_first: bool
    regions: tuple[str, ...]
    max_party: int

    @property
    def today(self) -> dt.date:
        return self.now.date()


def make_context(now: dt.datetime | None, tz: dt.tzinfo | str | None, locale: str,
                 home_region: str | None, max_party: int) -> Context:
    """Resolve the arguments of :func:`bot.entities.extract` once per call.

    ``now`` naive is read in ``tz``; aware is converted to it; None is the current time.
    """
    if tz is None:
        zone: dt.tzinfo = now.tzinfo if now is not None and now.tzinfo else dt.UTC
    elif isinstance(tz, str):
        zone = ZoneInfo(tz)
    else:
        zone = tz
    if now is None:
        now = dt.datetime.now(zone)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=zone)
    else:
        now = now.astimezone(zone)
    key = (locale or "zh").lower().replace("_", "-")
    region = _REGION.get(key) or _REGION.get(key.split("-")[0], "CN")
    regions = (region,) if not home_region or home_region == region else (region, home_region)
    return Context(now=now, tz=zone, day_first=key in _DAY_FIRST, regions=regions,
                   max_party=max_party)
