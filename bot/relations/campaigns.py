"""Campaign codes (posters, events, ads) and the links that carry a code to a first contact.

A code reaches brandbot as a Telegram deep link (``t.me/<bot>?start=<code>``), a WeChat
parametric QR scene, or the web chat's ``?ref=<code>``: each channel makes its own link
(:func:`links` asks them). The engine records the first code a fan
arrives with (docs/relationships.md, "Referrals"); a fan's personal code credits that fan, any
other code is a campaign code. Registering a campaign here names the code so reports can say
"poster-spring brought 41 fans" instead of showing a bare code.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.i18n import _
from bot.relations.store import Store, iso

# Telegram deep-link payloads allow A-Z a-z 0-9 _ - (at most 64); WeChat scenes at most 64.
CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class CampaignError(ValueError):
    """A campaign cannot be created as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    code: str
    persona: str
    created_at: str
    fans: int = 0


def slug(name: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-").lower()
    return text[:40]


def create_campaign(store: Store, persona: str, name: str, now: datetime,
                    code: str | None = None) -> Campaign:
    """Register campaign ``name`` with ``code`` (default: a slug of the name + 4 random chars)."""
    if not name.strip():
        raise CampaignError(
            _("give the campaign a name, e.g. `brandbot campaign create poster-spring`")
        )
    if code is None:
        base = slug(name) or "c"
        code = f"{base}-{''.join(random.choice(_ALPHABET) for _ in range(4))}"
    if not CODE.match(code):
        raise CampaignError(_(
            "code {code!r} cannot travel in a Telegram deep link: use 1-64 of A-Z a-z 0-9 _ -"
        ).format(code=code))
    if store.fan_by_referral_code(code) is not None:
        raise CampaignError(_("code {code!r} is a fan's personal referral code; choose "
                              "another").format(code=code))
    try:
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO campaigns (persona, name, code, created_at) VALUES (?, ?, ?, ?)",
                (persona, name, code, iso(now)),
            )
    except sqlite3.IntegrityError:
        raise CampaignError(_("code {code!r} is already taken; pass another with --code").format(
            code=code)) from None
    return Campaign(name, code, persona, iso(now))


def list_campaigns(store: Store, persona: str | None = None) -> list[Campaign]:
    """Registered campaigns with the number of fans each brought in (first touch)."""
    sql = (
        "SELECT c.name, c.code, c.persona, c.created_at, "
        "(SELECT count(*) FROM referrals r WHERE r.code = c.code AND r.referrer_id IS NULL) "
        "FROM campaigns c" + (" WHERE c.persona = ?" if persona else "") + " ORDER BY c.id"
    )
    rows = store.fetch_all(sql, (persona,) if persona else ())
    return [Campaign(r[0], r[1], r[2], r[3], r[4]) for r in rows]


class LinkMaker(Protocol):
    """A channel that can carry a code (a channel kind, bot/channels/contract.py)."""

    name: str

    def campaign_link(self, code: str, targets: Mapping[str, Any]) -> str | None: ...


def links(code: str, channels: Iterable[LinkMaker], targets: Mapping[str, Any]
          ) -> dict[str, str]:
    """Where ``code`` can be put, per channel that carries codes (a Telegram deep link, a
    WeChat QR scene, a web chat link...), in the channels' order.

    ``targets`` are what the links need (``web_url``, ``telegram_bot``); a channel missing its
    target says which setting gives it instead of a link that would not work.
    ``bot.channels.registry.campaign_links`` passes every registered channel.
    """
    out = {}
    for channel in channels:
        link = channel.campaign_link(code, targets)
        if link is not None:
            out[channel.name] = link
    return out
