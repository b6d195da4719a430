"""``brandbot wechat``: WeChat Official Account tools (qrcode here; the menu in wechat_menu.py).
"""

from __future__ import annotations

import click

from bot.commands.common import fail
from bot.commands.wechat_menu import menu as wechat_menu
from bot.i18n import _
from bot.tables import echo


@click.group()
def wechat() -> None:
    """WeChat Official Account tools (docs/channels/wechat.md)."""


@wechat.command("qrcode")
@click.option("--scene", required=True, help="Referral or campaign code scans carry (1-64 chars).")
@click.option("--permanent", is_flag=True, help="Permanent (max 100,000 per account), not 30 days.")
def wechat_qrcode(scene: str, permanent: bool) -> None:
    """Create a parametric QR code for a referral or campaign code and print its URL.

    Verified service accounts only. Reads BRANDBOT_WECHAT_APPID, _TOKEN, _SECRET, _VERIFIED
    (and _API_URL).

    Example: brandbot wechat qrcode --scene spring26
    """
    from bot.channels.wechat import WeChatChannelSettings, WeChatConfigError, qrcode
    from bot.channels.wechat_api import WeChatAPIError

    try:
        settings = WeChatChannelSettings.from_env()
        if settings is None:
            fail(_("set BRANDBOT_WECHAT_APPID and BRANDBOT_WECHAT_TOKEN (and "
                   "BRANDBOT_WECHAT_SECRET, BRANDBOT_WECHAT_VERIFIED=true) first; see "
                   "docs/channels/wechat.md"), 2)
        code = qrcode(settings, scene, permanent)
    except WeChatConfigError as exc:
        fail(str(exc), 2)
    except (WeChatAPIError, ValueError) as exc:
        fail(str(exc), 1)
    echo(code.url)
    echo(_("image: {url}").format(url=code.image_url))
    click.echo(_("permanent") if code.permanent else _("expires in {days} days").format(
        days=code.expire_seconds // 86400))


wechat.add_command(wechat_menu)
