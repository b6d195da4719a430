"""``brandbot fans``, ``brandbot fan link|export|forget``, ``brandbot kols``: the fans in the log.

Each command's docstring is its help text and ends with an example.
"""

from __future__ import annotations

import click

from bot.commands.common import (
    DB_HELP,
    DEFAULT_DB,
    DEFAULT_PERSONA,
    fail,
    load_persona,
    now,
    one_fan,
    open_store,
    print_table,
)
from bot.commands.links import link_options, link_targets
from bot.i18n import _, columns, pick, short_language
from bot.tables import echo, json_text, terminal_safe


@click.command()
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--persona", "-p", help="Only this persona's fans.")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
              help="Only fans with FIELD=VALUE (repeatable, all must hold): persona, channel, "
                   "stage, language, subscribed/handoff/blocked=yes|no, name=PART.")
@click.option("--sort", metavar="[-]FIELD", default="-last_seen", show_default=True,
              help="Order by last_seen, first_seen, score, name, stage or id; "
                   "- in front for highest/latest first.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Show at most N fans (table default: 50; --json default: all).")
@click.option("--tz", help="Show times in this IANA zone (default: each persona's timezone).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (raw values).")
def fans(db: str, persona: str | None, filters: tuple[str, ...], sort: str,
         limit: int | None, tz: str | None, as_json: bool) -> None:
    """List fans: name, channel, stage, score, subscribed, handoff, last seen.

    Times show in the persona's time zone ("今天 14:05"); --json keeps the raw log values.

    Example: brandbot fans --filter channel=web --filter subscribed=yes --sort -score --limit 20
    """
    from bot.commands.common import now, persona_zone, zone_option
    from bot.humantime import flag, when
    from bot.relations.fan_list import ListingError, build_query, count, page, stream

    zone_option(tz)
    store = open_store(db)
    try:
        try:
            query = build_query(list(filters), sort, persona)
        except ListingError as exc:
            fail(str(exc), 2)
        fields = [
            "id",
            "persona",
            "channel",
            "external_id",
            "display_name",
            "stage",
            "score",
            "subscribed",
            "handoff",
            "dialog_state",
            "last_seen",
        ]
        if as_json:
            for row in stream(store, query, limit):
                click.echo(json_text({c: row[c] for c in fields}))
            return
        shown = page(store, query, limit or 50)
        total = count(store, query) if len(shown) == (limit or 50) else len(shown)
    finally:
        store.close()
    lang, moment = short_language(), now()
    header = columns("id", "persona", "channel", "fan", "stage", "score", "subscribed", "handoff",
                     "last seen")
    print_table(header, [
        [r["id"], r["persona"], r["channel"], r["display_name"] or r["external_id"],
         r["stage"], r["score"], pick(flag(r["subscribed"]), flag(r["subscribed"], lang)),
         pick(flag(r["handoff"]), flag(r["handoff"], lang)),
         pick(when(r["last_seen"], persona_zone(r["persona"], tz), moment),
              when(r["last_seen"], persona_zone(r["persona"], tz), moment, lang))]
        for r in shown
    ], fit=True, keep=(0, 5, 6, 7, 8))
    if total > len(shown):
        click.echo(_("{shown} of {total} fan(s) shown (--limit N for more)").format(
            shown=len(shown), total=total))
    else:
        click.echo(_("{total} fan(s)").format(total=total))


@click.group()
def fan() -> None:
    """One fan: referral links, personal data export, forgetting."""


@fan.command("link")
@click.argument("fan_ref", metavar="FAN")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@link_options
def fan_link(fan_ref, db, telegram_bot, web_url, config) -> None:
    """Print a fan's personal referral links (FAN: id, external id or name).

    Example: brandbot fan link 42 --telegram-bot laowang_bot
    """
    from bot.channels.registry import campaign_links as links

    store = open_store(db)
    row = one_fan(store, fan_ref)
    store.close()
    if not row["referral_code"]:
        fail(_("fan {fan!r} has no referral code (forgotten?)").format(fan=fan_ref))
    echo(_("fan {id} ({name}): code {code}").format(
        id=row["id"], name=terminal_safe(row["display_name"] or row["external_id"]),
        code=row["referral_code"]))
    telegram_bot, web_url = link_targets(config, telegram_bot, web_url)
    for where, link in links(row["referral_code"], telegram_bot=telegram_bot,
                             web_url=web_url).items():
        echo(f"  {where:9} {link}")


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
    click.echo(json_text(data, indent=2))


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
        who = _("fan {id} ({channel}, {name})").format(
            id=row["id"], channel=row["channel"],
            name=terminal_safe(row["display_name"] or row["external_id"]))
        if not yes and not click.confirm(_("forget {who}? This cannot be undone").format(who=who)):
            fail(_("nothing forgotten"))
        changed = forget_fan(store, row["id"], keep_aggregates=not no_aggregates)
    finally:
        store.close()
    summary = ", ".join(f"{table}: {n}" for table, n in sorted(changed.items()))
    done = (_("forgot {who}: deleted ({summary})") if no_aggregates
            else _("forgot {who}: anonymised ({summary})"))
    echo(done.format(who=who, summary=summary))


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
    rows = rank(store, rules.id, rules.relationship, now(), limit=top)
    store.close()
    if as_json:
        for i, k in enumerate(rows, 1):
            click.echo(json_text({"rank": i, "fan_id": k.fan_id, "channel": k.channel,
                                  "name": k.name, "stage": k.stage, "direct": k.direct,
                                  "second": k.second, "score": round(k.score, 2),
                                  "influence": round(k.influence, 2), "kol": k.tagged}))
        return
    print_table(
        columns("rank", "id", "fan", "channel", "stage", "direct", "2nd level", "score",
                "influence", "tag"),
        [[str(i), str(k.fan_id), k.name, k.channel, k.stage, str(k.direct), str(k.second),
          f"{k.score:.1f}", f"{k.influence:.1f}", "kol" if k.tagged else ""]
         for i, k in enumerate(rows, 1)],
        fit=True, keep=(0, 1, 5, 6, 7, 8, 9),
    )
    threshold = rules.relationship.kol_threshold
    echo(_("{count} fan(s) who brought others in; kol tag at influence {threshold}").format(
        count=len(rows), threshold=threshold if threshold is not None else _("off")))
