"""WeChat as the settings, the planner and the daemon know it (bot/channels/wechat.py runs it).

Its settings section (``wechat:``) and short environment names, the parametric QR scene that
carries a campaign code, its reach rules and its newsletter outlet. An Official Account may
message a fan only as customer-service messages: within 48 hours of the fan's last message, at
most 5 per fan message (docs/channels/protocol-notes.md); the planner skips the others with
these rules' reasons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.channels.contract import ChannelConfigError, ChannelKind, ChannelServices, Reach

if TYPE_CHECKING:
    from bot.relations.broadcast import Item
    from bot.relations.store import Store

WINDOW = timedelta(hours=48)
QUOTA = 5  # customer-service messages per fan message (bot/channels/wechat_api.py)
R_WINDOW = "outside WeChat's 48-hour window"
R_QUOTA = "WeChat customer-service quota used up"


class WeChatSettings(BaseModel):
    """One WeChat Official Account; see docs/channels/wechat.md for the console side."""

    model_config = ConfigDict(extra="forbid")

    app_id: str | None = Field(None, description="开发者ID AppID.")
    app_secret: SecretStr | None = Field(None, description="AppSecret (API calls).")
    token: SecretStr | None = Field(None, description="服务器配置 Token (signatures).")
    aes_key: SecretStr | None = Field(None, description="EncodingAESKey; safe mode when set.")
    previous_aes_key: SecretStr | None = Field(None, description="The key before a rotation.")
    encryption: Literal["plain", "compatible", "safe"] | None = None
    verified: bool = Field(False, description="Verified account: customer-service sends allowed.")
    path: str = "/wechat"
    api_url: str = "https://api.weixin.qq.com/cgi-bin/"
    reply_budget: float = Field(4.0, gt=0, lt=5, description="Seconds for a passive reply.")
    max_body_bytes: int = Field(65_536, ge=1024, le=1_048_576)
    keep_aggregates: bool = Field(True, description="On unfollow keep anonymised counts.")

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.token and self.token.get_secret_value())


class WeChatKind(ChannelKind):
    name = "wechat"
    settings_model = WeChatSettings
    env_aliases = {
        "BRANDBOT_WECHAT_TOKEN": "token",
        "BRANDBOT_WECHAT_APPID": "app_id",
        "BRANDBOT_WECHAT_SECRET": "app_secret",
        "BRANDBOT_WECHAT_AES_KEY": "aes_key",
        "BRANDBOT_WECHAT_API_URL": "api_url",
        "BRANDBOT_WECHAT_PREVIOUS_AES_KEY": "previous_aes_key",
        "BRANDBOT_WECHAT_ENCRYPTION": "encryption",
        "BRANDBOT_WECHAT_VERIFIED": "verified",
        "BRANDBOT_WECHAT_PATH": "path",
        "BRANDBOT_WECHAT_REPLY_BUDGET": "reply_budget",
        "BRANDBOT_WECHAT_MAX_BODY_BYTES": "max_body_bytes",
        "BRANDBOT_WECHAT_KEEP_AGGREGATES": "keep_aggregates",
    }
    enable_hint = ("set BRANDBOT_WECHAT_TOKEN and BRANDBOT_WECHAT_APPID (+ BRANDBOT_WECHAT_SECRET, "
                   "BRANDBOT_WECHAT_AES_KEY for safe mode; docs/channels/wechat.md)")
    one_persona = True  # one account
    mask_invalid_values = True
    reach = Reach(window=WINDOW, window_reason=R_WINDOW, quota=QUOTA, quota_reason=R_QUOTA)

    def create(self, section: WeChatSettings, personas: list[str], services: ChannelServices):
        from bot.channels.wechat import WeChatChannel, WeChatChannelSettings, WeChatConfigError

        try:
            # The settings already merged file and environment: don't read the environment again.
            settings = WeChatChannelSettings.from_section(section, environ={})
            return WeChatChannel(services.run_turn, personas[0], settings, store=services.store,
                                 on_rejected=services.on_rejected)
        except WeChatConfigError as exc:
            raise ChannelConfigError([f"wechat: {exc}"]) from None

    def outlet(self, section: WeChatSettings, store: Store, persona: str, *,
               rate: float | None = 30.0):
        if not (section.enabled and section.app_secret is not None):
            return "wechat is not configured: set BRANDBOT_WECHAT_APPID and _SECRET"
        return WeChatOutlet(section.app_id, section.app_secret.get_secret_value(),
                            section.api_url)

    def campaign_link(self, code: str, targets: Mapping[str, Any]) -> str:
        return (f"QR scene {code}: `brandbot wechat qrcode --scene {code}` makes its QR code "
                "(verified service accounts)")


class WeChatOutlet:
    """Newsletters as WeChat customer-service messages (verified accounts), within the quota."""

    name = "wechat"
    reach = WeChatKind.reach

    def __init__(self, app_id: str, secret: str, api_url: str | None = None):
        self.app_id, self.secret, self.api_url = app_id, secret, api_url
        self.owner: Any = None

    async def start(self) -> None:
        if self.owner is None:
            from bot.channels.wechat_api import DEFAULT_API_URL, TokenOwner

            self.owner = TokenOwner(self.app_id, self.secret, self.api_url or DEFAULT_API_URL)
        # The token now, before any delivery is claimed: an unreachable API or a refused
        # AppSecret stops the broadcast resumable (like Telegram's getMe), instead of marking
        # every WeChat fan 'failed' for good.
        await asyncio.to_thread(self.owner.token)

    async def deliver(self, items: list[Item]) -> dict[int, tuple[str, str | None]]:
        from bot.channels.wechat_api import Quota, send_texts

        def one(item: Item) -> tuple[str, str | None]:
            quota = Quota()  # the plan checked the 48 h window and the sends spent from the log
            quota.opened_by(item.external_id, "message")
            result = send_texts(self.owner, quota, item.external_id, [item.text])
            return ("sent", None) if result.sent else ("failed", result.reason or "not sent")

        out = {}
        for item in items:
            out[item.delivery_id] = await asyncio.to_thread(one, item)
        return out

    async def close(self) -> None:
        self.owner = None
