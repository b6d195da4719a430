"""``brandbot campaign create|list|qr``: campaign codes for posters, events and ads.

Each command's docstring is its help text and ends with an example.
"""

from __future__ import annotations

import click

from bot.commands.common import (
    DB_HELP,
    DEFAULT_DB,
    DEFAULT_PERSONA,
    fail,
    now,
    open_store,
    print_table,
)
from bot.commands.links import link_options, link_targets
from bot.i18n import _, columns
from bot.tables import echo


@click.group()
def campaign() -> None:
    """Campaign codes for posters, events and ads."""


@campaign.command("create")
@click.argument("name")
@click.option("--code", help="The code itself (default: from the name + 4 random characters).")
@click.option("--persona", "-p", default=DEFAULT_PERSONA, show_default=True, help="Persona id.")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@link_options
def campaign_create(name, code, persona, db, telegram_bot, web_url, config) -> None:
    """Create a campaign code and print the links that carry it.

    Fans whose first contact carries the code are counted for the campaign (first touch).
    The links use public_url and the bot's username from the settings; `brandbot campaign qr`
    prints one as a QR image.

    Example: brandbot campaign create "spring poster" --telegram-bot laowang_bot
    """
    from bot.channels.registry import campaign_links as links
    from bot.relations import Store
    from bot.relations.campaigns import CampaignError, create_campaign

    store = Store(db)
    try:
        created = create_campaign(store, persona, name, now(), code)
    except CampaignError as exc:
        fail(str(exc))
    finally:
        store.close()
    echo(_("campaign {name!r}: code {code}").format(name=created.name, code=created.code))
    telegram_bot, web_url = link_targets(config, telegram_bot, web_url)
    for where, link in links(created.code, telegram_bot=telegram_bot, web_url=web_url).items():
        echo(f"  {where:9} {link}")


@campaign.command("list")
@click.option("--persona", "-p", help="Only this persona's campaigns.")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def campaign_list(persona, db) -> None:
    """List campaigns and how many fans each brought in.

    Example: brandbot campaign list
    """
    from bot.relations.campaigns import list_campaigns

    store = open_store(db)
    rows = list_campaigns(store, persona)
    store.close()
    print_table(columns("name", "code", "persona", "fans", "created"),
           [[c.name, c.code, c.persona, str(c.fans), c.created_at[:10]] for c in rows])
    echo(_("{count} campaign(s)").format(count=len(rows)))


@campaign.command("qr")
@click.argument("code")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Image file: .png or .svg.")
@click.option("--channel", type=click.Choice(["web", "telegram"]), default="web",
              show_default=True, help="Which link the QR code opens.")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@link_options
@click.option("--scale", default=10, show_default=True, type=click.IntRange(1, 100),
              help="Pixels per QR module (PNG).")
def campaign_qr(code, output, channel, db, telegram_bot, web_url, config, scale) -> None:
    """Write a campaign's (or a fan's referral) link as a QR image, ready to print.

    PNG or SVG by the file's extension. --channel web opens the web chat at public_url with
    ?ref=CODE; --channel telegram opens the bot with /start CODE. For WeChat's own parametric
    QR code see `brandbot wechat qrcode`.

    Example: brandbot campaign qr spring-x7k2 -o poster.png
    """
    from pathlib import Path

    import segno

    from bot.channels.registry import campaign_links as links
    from bot.relations import Store
    from bot.relations.campaigns import CODE
    from bot.relations.fans import code_known

    suffix = Path(output).suffix.lower()
    if suffix not in (".png", ".svg"):
        fail(_("{output}: write the image as .png or .svg").format(output=output))
    if not CODE.match(code):
        fail(_("code {code!r} cannot travel in a link: use 1-64 of A-Z a-z 0-9 _ -").format(
            code=code))
    if Path(db).exists():
        store = Store(db)
        try:
            known = code_known(store, code)
        finally:
            store.close()
        if not known:
            fail(_("no campaign or fan with code {code!r} in {db}; see `brandbot campaign "
                   "list` or create it with `brandbot campaign create NAME --code CODE`").format(
                code=code, db=db))
    telegram_bot, web_url = link_targets(config, telegram_bot, web_url,
                                         need_telegram=channel == "telegram",
                                         need_web=channel == "web")
    link = links(code, telegram_bot=telegram_bot, web_url=web_url)[channel]
    qr = segno.make(link, error="m")
    if suffix == ".png":
        qr.save(output, scale=scale, border=4)
    else:
        qr.save(output, scale=scale, border=4, xmldecl=True, svgns=True)
    click.echo(_("wrote {output}: {link}").format(output=output, link=link))
