"""``brandbot wechat menu push FILE | show | delete``: the account's custom menu from YAML.

Messages in the operator's language (bot/i18n.py: ``--lang``, else LC_ALL/LC_MESSAGES/LANG). The
AppSecret and access_token never appear in any output (bot/channels/wechat_api.py masks them).
"""

from __future__ import annotations

import sys

import click

from bot.i18n import _, lang_option, pick

LANG_OPTION = lang_option()
CONFIG_OPTION = click.option("--config", "-c", help="Settings file, as for `brandbot serve` "
                             "(BRANDBOT_WECHAT_* variables work too).")


def _die(message: str, code: int = 1) -> None:
    click.echo(_("error: {message}").format(message=message), err=True)
    sys.exit(code)


def _owner(config: str | None):
    """The account's token owner, from the settings' wechat section and BRANDBOT_WECHAT_*."""
    from bot.channels.wechat import WeChatChannelSettings, WeChatConfigError, plain
    from bot.channels.wechat_api import TokenOwner
    from bot.commands.common import load_settings_or_fail

    settings = load_settings_or_fail(config, None)
    try:
        wechat = WeChatChannelSettings.from_section(settings.wechat)
    except WeChatConfigError as exc:
        _die(_("wechat settings: {exc}").format(exc=exc), 2)
    secret = plain(wechat.app_secret) if wechat else None
    if wechat is None or not secret:
        _die(_("set BRANDBOT_WECHAT_APPID, BRANDBOT_WECHAT_TOKEN and BRANDBOT_WECHAT_SECRET "
               "first (mp.weixin.qq.com → Settings and development → Basic configuration); "
               "see docs/channels/wechat.md"), 2)
    return TokenOwner(wechat.app_id, secret, wechat.api_url), settings


def _persona_for(ref: str | None, menu_persona: str | None, settings):
    from bot.commands.common import load_persona

    ref = ref or menu_persona or next(
        (p.persona for p in settings.personas if "wechat" in p.channels), None)
    if ref is None:
        _die(_("name the persona with -p (or persona: in the menu file) so the click keys can "
               "be checked against its menu_clicks"), 2)
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
    from bot.commands.common import load_settings_or_fail

    try:
        draft = load_menu(file)  # the file alone first: its persona: line, its limits
        settings = load_settings_or_fail(config, None)
        model = _persona_for(persona, draft.persona, settings)
        checked = load_menu(file, model)
    except MenuError as exc:
        for problem in exc.problems:
            click.echo(pick(problem.text("en"), problem.text("zh")), err=True)
        _die(_("the menu has {count} problem(s); nothing was sent. Fix the lines above and "
               "push again").format(count=len(exc.problems)))
    top, subs = checked.summary()
    if check_only:
        click.echo(_("the menu is valid: {top} button(s), {subs} sub-button(s) (not sent)").format(
            top=top, subs=subs))
        return
    owner = _owner(config)[0]
    try:
        from bot.channels.wechat_menu import push_menu

        push_menu(owner, checked)
    except WeChatAPIError as exc:
        _die(_("WeChat refused the menu: {exc}").format(exc=exc))
    click.echo(_(
        "menu updated: {top} button(s), {subs} sub-button(s) (fans see it within minutes)").format(
        top=top, subs=subs))


@menu.command("show")
@CONFIG_OPTION
@LANG_OPTION
def menu_show(config, lang) -> None:
    """Print the account's current menu as a file `push` accepts.

    Example: brandbot wechat menu show > menu.yaml
    """
    from bot.channels.wechat_api import WeChatAPIError
    from bot.channels.wechat_menu import current_menu, to_yaml

    owner = _owner(config)[0]
    try:
        body = current_menu(owner)
    except WeChatAPIError as exc:
        _die(_("could not read the menu: {exc}").format(exc=exc))
    if body is None:
        click.echo(_("the account has no custom menu"),
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

    owner = _owner(config)[0]
    if not yes and not click.confirm(_("Delete the account's custom menu?")):
        click.echo(_("not deleted"))
        return
    try:
        delete_menu(owner)
    except WeChatAPIError as exc:
        _die(_("could not delete the menu: {exc}").format(exc=exc))
    click.echo(_("menu deleted"))
