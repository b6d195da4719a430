"""Referrals, KOLs, privacy, newsletters, the operator desk and reports (issue 6).

Each command's docstring is its help text and ends with an example.
"""

from __future__ import annotations

import json

import click

from bot.commands.common import DB_HELP, fail, load_persona, now, one_fan, open_store

DEFAULT_DB = "brandbot.db"
DEFAULT_PERSONA = "laowang-kitchen"


def _table(columns: list[str], rows: list[list[str]]) -> None:
    from bot.cli import _print_table

    _print_table(columns, rows)


def register(main: click.Group, handoff: click.Group) -> None:
    main.add_command(campaign)
    main.add_command(fan)
    main.add_command(kols)


# -- campaigns and links -------------------------------------------------------------------------


@click.group()
def campaign() -> None:
    """Campaign codes for posters, events and ads."""


@campaign.command("create")
@click.argument("name")
@click.option("--code", help="The code itself (default: from the name + 4 random characters).")
@click.option("--persona", "-p", default=DEFAULT_PERSONA, show_default=True, help="Persona id.")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.option("--telegram-bot", help="The bot's @username, for the deep link.")
@click.option("--web-url", default="http://127.0.0.1:8080/", show_default=True,
              help="Public address of the web chat.")
def campaign_create(name, code, persona, db, telegram_bot, web_url) -> None:
    """Create a campaign code and print the links that carry it.

    Fans whose first contact carries the code are counted for the campaign (first touch).

    Example: brandbot campaign create "spring poster" --telegram-bot laowang_bot
    """
    from bot.relations import Store
    from bot.relations.campaigns import CampaignError, create_campaign, links

    store = Store(db)
    try:
        created = create_campaign(store, persona, name, now(), code)
    except CampaignError as exc:
        fail(str(exc))
    finally:
        store.close()
    click.echo(f"campaign {created.name!r}: code {created.code}")
    for where, link in links(created.code, telegram_bot=telegram_bot, web_url=web_url).items():
        click.echo(f"  {where:9} {link}")


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
    _table(["name", "code", "persona", "fans", "created"],
           [[c.name, c.code, c.persona, str(c.fans), c.created_at[:10]] for c in rows])
    click.echo(f"{len(rows)} campaign(s)")


@click.group()
def fan() -> None:
    """One fan: referral links, personal data export, forgetting."""


@fan.command("link")
@click.argument("fan_ref", metavar="FAN")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.option("--telegram-bot", help="The bot's @username, for the deep link.")
@click.option("--web-url", default="http://127.0.0.1:8080/", show_default=True,
              help="Public address of the web chat.")
def fan_link(fan_ref, db, telegram_bot, web_url) -> None:
    """Print a fan's personal referral links (FAN: id, external id or name).

    Example: brandbot fan link 42 --telegram-bot laowang_bot
    """
    from bot.relations.campaigns import links

    store = open_store(db)
    row = one_fan(store, fan_ref)
    store.close()
    if not row["referral_code"]:
        fail(f"fan {fan_ref!r} has no referral code (forgotten?)")
    click.echo(f"fan {row['id']} ({row['display_name'] or row['external_id']}): "
               f"code {row['referral_code']}")
    for where, link in links(row["referral_code"], telegram_bot=telegram_bot,
                             web_url=web_url).items():
        click.echo(f"  {where:9} {link}")


# -- KOLs ----------------------------------------------------------------------------------------


@click.command()
@click.option("--top", "-n", default=20, show_default=True, help="How many to show.")
@click.option("--persona", "-p", default=DEFAULT_PERSONA, show_default=True,
              help="Persona id or path (its relationship rules).")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def kols(top, persona, db, as_json) -> None:
    """Rank fans by influence: the fans they brought in, how engaged those became, their own.

    The formula is in docs/relationships.md ("KOLs and influence"). `kol` marks fans tagged
    automatically (persona `relationship.kol_threshold`).

    Example: brandbot kols --top 10
    """
    from bot.relations.kols import rank

    rules = load_persona(persona)
    store = open_store(db)
    rows = rank(store, rules.id, rules.relationship, now())[:top]
    store.close()
    if as_json:
        for i, k in enumerate(rows, 1):
            click.echo(json.dumps({"rank": i, "fan_id": k.fan_id, "channel": k.channel,
                                   "name": k.name, "stage": k.stage, "direct": k.direct,
                                   "second": k.second, "score": round(k.score, 2),
                                   "influence": round(k.influence, 2), "kol": k.tagged},
                                  ensure_ascii=False))
        return
    _table(
        ["rank", "id", "fan", "channel", "stage", "direct", "2nd level", "score", "influence",
         "tag"],
        [[str(i), str(k.fan_id), k.name, k.channel, k.stage, str(k.direct), str(k.second),
          f"{k.score:.1f}", f"{k.influence:.1f}", "kol" if k.tagged else ""]
         for i, k in enumerate(rows, 1)],
    )
    threshold = rules.relationship.kol_threshold
    click.echo(f"{len(rows)} fan(s) who brought others in; kol tag at influence "
               f"{threshold if threshold is not None else 'off'}")


# -- privacy -------------------------------------------------------------------------------------


@fan.command("export")
@click.argument("fan_ref", metavar="FAN")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def fan_export(fan_ref, db) -> None:
    """Print everything stored about a fan as JSON (a subject-access request).

    FAN: numeric id, external (platform) id or display name. See docs/privacy.md.

    Example: brandbot fan export 42 > fan-42.json
    """
    from bot.relations.privacy import export_fan

    store = open_store(db)
    try:
        row = one_fan(store, fan_ref)
        data = export_fan(store, row["id"])
    finally:
        store.close()
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@fan.command("forget")
@click.argument("fan_ref", metavar="FAN")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.option("--no-aggregates", is_flag=True,
              help="Delete the fan's rows too, instead of keeping them anonymised for counts.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def fan_forget(fan_ref, db, no_aggregates, yes) -> None:
    """Delete a fan's personal data and messages (aggregate counters may stay).

    By default the fan's rows stay, anonymised, so counts (fans per stage, messages per day,
    campaign results) keep adding up; --no-aggregates deletes them. See docs/privacy.md.

    Example: brandbot fan forget 42 --yes
    """
    from bot.relations.privacy import forget_fan

    store = open_store(db)
    try:
        row = one_fan(store, fan_ref)
        who = f"fan {row['id']} ({row['channel']}, {row['display_name'] or row['external_id']})"
        if not yes and not click.confirm(f"forget {who}? This cannot be undone"):
            fail("nothing forgotten")
        changed = forget_fan(store, row["id"], keep_aggregates=not no_aggregates)
    finally:
        store.close()
    summary = ", ".join(f"{table}: {n}" for table, n in sorted(changed.items()))
    click.echo(f"forgot {who}: {'deleted' if no_aggregates else 'anonymised'} ({summary})")
