"""``brandbot wechat menu push FILE | show | delete``: the account's custom menu from YAML.

Messages in Chinese when LANG/LC_ALL start with zh (or ``--lang zh``), else English. The
AppSecret and access_token never appear in any output (bot/channels/wechat_api.py masks them).
"""

from __future__ import annotations

import sys

import click

from bot.commands.bilingual import say

LANG_OPTION = click.option("--lang", type=click.Choice(["zh", "en"]),
                           help="Output language (default: zh when LANG/LC_ALL start with zh).")
CONFIG_OPTION = click.option("--config", "-c", help="Settings file, as for `brandbot serve` "
                             "(BRANDBOT_WECHAT_* variables work too).")


def _die(zh: str, en: str, lang: str | None, code: int = 1) -> None:
    click.echo(say(f"错误：{zh}", f"error: {en}", lang), err=True)
    sys.exit(code)


def _owner(config: str | None, lang: str | None):
    """The account's token owner, from the settings' wechat section and BRANDBOT_WECHAT_*."""
    from bot.channels.wechat import WeChatChannelSettings, WeChatConfigError, plain
    from bot.channels.wechat_api import TokenOwner
    from bot.commands.common import load_settings_or_fail

    settings = load_settings_or_fail(config, None)
    try:
        wechat = WeChatChannelSettings.from_section(settings.wechat)
    except WeChatConfigError as exc:
        _die(f"公众号配置有误：{exc}", f"wechat settings: {exc}", lang, 2)
    secret = plain(wechat.app_secret) if wechat else None
    if wechat is None or not secret:
        _die("请先设置 BRANDBOT_WECHAT_APPID、BRANDBOT_WECHAT_TOKEN 和 BRANDBOT_WECHAT_SECRET"
             "（公众平台 → 设置与开发 → 基本配置），见 docs/channels/wechat.md",
             "set BRANDBOT_WECHAT_APPID, BRANDBOT_WECHAT_TOKEN and BRANDBOT_WECHAT_SECRET "
             "first (mp.weixin.qq.com → Settings and development → Basic configuration); see "
             "docs/channels/wechat.md", lang, 2)
    return TokenOwner(wechat.app_id, secret, wechat.api_url), settings


def _persona_for(ref: str | None, menu_persona: str | None, settings, lang: str | None):
    from bot.commands.common import load_persona

    ref = ref or menu_persona or next(
        (p.persona for p in settings.personas if "wechat" in p.channels), None)
    if ref is None:
        _die("请用 -p 指定人设（或在菜单文件里写 persona:），以便检查按钮 key",
             "name the persona with -p (or persona: in the menu file) so the click keys can be "
             "checked against its menu_clicks", lang, 2)
    return load_persona(ref)


@click.group("menu")
def menu() -> None:
    """The custom menu (自定义菜单): push a YAML file, show or delete the current one."""


@menu.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--persona", "-p", help="Persona id or path whose menu_clicks the keys must be in "
              "(default: persona: in the file, else the settings' WeChat persona).")
@click.option("--check", "check_only", is_flag=True, help="Only check the file; send nothing.")
@CONFIG_OPTION
@LANG_OPTION
def menu_push(file, persona, check_only, config, lang) -> None:
    """Check a menu file against WeChat's limits and the persona, then make it the menu.

    Nothing is sent if anything is wrong: every problem is listed with its line and the fix.
    Fans see the new menu within minutes (or after unfollowing and following again).

    Example: brandbot wechat menu push deploy/wechat-menu.yaml
    """
    from bot.channels.wechat_api import WeChatAPIError
    from bot.channels.wechat_menu import MenuError, load_menu
    from bot.commands.bilingual import ui_language
    from bot.commands.common import load_settings_or_fail

    language = lang or ui_language()
    try:
        draft = load_menu(file)  # the file alone first: its persona: line, its limits
        settings = load_settings_or_fail(config, None)
        model = _persona_for(persona, draft.persona, settings, lang)
        checked = load_menu(file, model)
    except MenuError as exc:
        for problem in exc.problems:
            click.echo(problem.text(language), err=True)
        _die(f"菜单有 {len(exc.problems)} 处问题，未发送任何内容；改好上面各行后再推送",
             f"the menu has {len(exc.problems)} problem(s); nothing was sent. Fix the lines "
             "above and push again", lang)
    top, subs = checked.summary()
    if check_only:
        click.echo(say(f"菜单检查通过：{top} 个一级菜单，{subs} 个子菜单（未发送）",
                       f"the menu is valid: {top} button(s), {subs} sub-button(s) (not sent)",
                       lang))
        return
    owner, _ = _owner(config, lang)
    try:
        from bot.channels.wechat_menu import push_menu

        push_menu(owner, checked)
    except WeChatAPIError as exc:
        _die(f"微信拒绝了菜单：{exc}", f"WeChat refused the menu: {exc}", lang)
    click.echo(say(f"菜单已更新：{top} 个一级菜单，{subs} 个子菜单（粉丝几分钟内可见）",
                   f"menu updated: {top} button(s), {subs} sub-button(s) (fans see it within "
                   "minutes)", lang))


@menu.command("show")
@CONFIG_OPTION
@LANG_OPTION
def menu_show(config, lang) -> None:
    """Print the account's current menu as a file `push` accepts.

    Example: brandbot wechat menu show > menu.yaml
    """
    from bot.channels.wechat_api import WeChatAPIError
    from bot.channels.wechat_menu import current_menu, to_yaml

    owner, _ = _owner(config, lang)
    try:
        body = current_menu(owner)
    except WeChatAPIError as exc:
        _die(f"读取菜单失败：{exc}", f"could not read the menu: {exc}", lang)
    if body is None:
        click.echo(say("公众号目前没有自定义菜单", "the account has no custom menu", lang),
                   err=True)
        return
    click.echo(to_yaml(body), nl=False)


@menu.command("delete")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@CONFIG_OPTION
@LANG_OPTION
def menu_delete(yes, config, lang) -> None:
    """Remove the account's custom menu (fans then see none).

    Example: brandbot wechat menu delete --yes
    """
    from bot.channels.wechat_api import WeChatAPIError
    from bot.channels.wechat_menu import delete_menu

    owner, _ = _owner(config, lang)
    if not yes and not click.confirm(say("确定删除公众号的自定义菜单吗？", "Delete the account's "
                                         "custom menu?", lang)):
        click.echo(say("未删除", "not deleted", lang))
        return
    try:
        delete_menu(owner)
    except WeChatAPIError as exc:
        _die(f"删除菜单失败：{exc}", f"could not delete the menu: {exc}", lang)
    click.echo(say("菜单已删除", "menu deleted", lang))
