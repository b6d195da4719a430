"""The web chat as the settings, the planner and the daemon know it (bot/channels/web.py runs it).

Its settings section (``web:``), its banner, and its newsletter outlet: a page cannot be pushed
to, so newsletters wait in the log's outbox (:mod:`bot.relations.outbox`) until the fan's page
is next open — the outlet stands in for the push, with no window and no quota.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bot.channels.contract import ChannelKind, ChannelServices

if TYPE_CHECKING:
    from bot.relations.broadcast import Item
    from bot.relations.store import Store

WEB_OFF = "web chat is off: set web.enabled: true"


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    max_body_bytes: int = Field(16_384, ge=256, le=1_048_576)
    max_text_chars: int = Field(2_000, ge=1, le=100_000)
    cookie_secure: bool = Field(False, description="Set the fan cookie's Secure flag (HTTPS).")
    cookie_secret: SecretStr | None = Field(
        None, min_length=32,
        description="Signs the fan cookie; unset: generated once into <db>.cookie-secret (0600).",
    )
    api_key: SecretStr | None = Field(
        None, min_length=16,
        description="Bearer key that lets a server-side caller name the fan (the \"fan\" field).",
    )
    messages_per_fan: str | None = Field(
        "20/minute", description="POST /api/chat per fan (limits syntax); null: no limit."
    )
    messages_per_ip: str | None = Field(
        "60/minute", description="POST /api/chat per client address; null: no limit."
    )
    requests_per_ip: str | None = Field(
        "600/minute", description="Every /api/ request per client address; null: no limit."
    )
    new_fans_per_ip: str | None = Field(
        "30/minute;300/hour",
        description="New fan cookies per client address (an IPv6 /64); null: no limit.",
    )
    rate_limit_exempt: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Client addresses or networks never rate-limited (loopback: tests, bench).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="Proxies whose X-Forwarded-For gives the client address (nginx).",
    )

    @field_validator("messages_per_fan", "messages_per_ip", "requests_per_ip",
                     "new_fans_per_ip")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        from bot.channels.web_limits import check_rate

        return check_rate(value)

    @field_validator("rate_limit_exempt", "trusted_proxies", mode="before")
    @classmethod
    def _exempt(cls, value: Any) -> Any:
        from bot.channels.web_limits import check_networks

        if isinstance(value, str):  # BRANDBOT_WEB__RATE_LIMIT_EXEMPT=10.0.0.0/8,::1
            value = [v.strip() for v in value.split(",") if v.strip()]
        return check_networks(value) if isinstance(value, list) else value


class WebKind(ChannelKind):
    name = "web"
    settings_model = WebSettings
    enable_hint = "set web.enabled: true (BRANDBOT_WEB__ENABLED=true)"

    def create(self, section: WebSettings, personas: list[str], services: ChannelServices):
        from bot.channels.web import WebChannel, web_security

        return WebChannel(
            services.run_turn,
            personas,
            services.persona_info,
            store=services.store,
            max_body_bytes=section.max_body_bytes,
            max_text_chars=section.max_text_chars,
            cookie_secure=section.cookie_secure,
            on_rejected=services.on_rejected,
            **web_security(section, services.db),
        )

    def outlet(self, section: WebSettings, store: Store, persona: str, *,
               rate: float | None = 30.0):
        return WebOutboxOutlet(store) if section.enabled else WEB_OFF

    def campaign_link(self, code: str, targets: Mapping[str, Any]) -> str:
        web_url = targets.get("web_url") or "http://127.0.0.1:8080/"
        sep = "&" if "?" in web_url else "?"
        return f"{web_url}{sep}ref={quote(code)}"


class WebOutboxOutlet:
    """Newsletters for web chat fans: queued in the log's outbox (:mod:`bot.relations.outbox`).

    A page cannot be pushed to; the fan's page shows the newsletter when it is next open (it
    polls at once when it opens, then every few seconds) and acknowledges it, so "sent" here
    means "waiting for the fan's page", possibly for a long time or for a visit that never
    comes. Nothing leaves the machine, so there is no pacing and nothing to fail but the write.
    """

    name = "web"
    reach = WebKind.reach

    def __init__(self, store: Store, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def deliver(self, items: list[Item]) -> dict[int, tuple[str, str | None]]:
        from bot.messages import Reply
        from bot.relations import outbox

        def queue() -> None:
            now = self.clock()
            for item in items:
                outbox.enqueue(self.store, item.fan_id, [Reply(item.text, "newsletter")], now)

        await asyncio.to_thread(queue)
        return {item.delivery_id: ("sent", None) for item in items}
