"""``brandbot handoff`` (list, show, reply, end, expire): the operator desk, conversations a human
holds.

Each command's docstring is its help text and ends with an example.
"""

from __future__ import annotations

import sys

import click

from bot.commands.common import (
    DB_HELP,
    DEFAULT_DB,
    fail,
    load_brand,
    load_settings_or_fail,
    now,
    one_fan,
    open_store,
    print_table,
)
from bot.commands.delivery import push, push_many
from bot.i18n import _, columns, pgettext, pick, short_language
from bot.tables import echo, terminal_safe


def _delivery_word(status: str) -> str:
    """How a delivery status (sent, queued, failed) reads in the operator's language."""
    words = {"sent": pgettext("delivery", "sent"), "queued": pgettext("delivery", "queued"),
             "failed": pgettext("delivery", "failed")}
    return words.get(status, status)


@click.group()
def handoff() -> None:
    """The operator desk: conversations a human holds."""


@handoff.command("list")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--tz", help="Show times in this IANA zone (default: each persona's timezone).")
def handoff_list(db: str, tz: str | None) -> None:
    """List conversations waiting for or held by a human, longest waiting first: why the
    human was asked for, how long the fan has waited, their last message.

    Example: brandbot handoff list
    """
    from bot.commands.common import now, persona_zone, zone_option
    from bot.humantime import ago, when
    from bot.relations.fan_list import handoffs, reason
    from bot.tables import terminal_safe, truncate

    zone_option(tz)
    store = open_store(db)
    try:
        rows = handoffs(store)
    finally:
        store.close()
    lang, moment = short_language(), now()
    header = columns("id", "persona", "channel", "fan", "reason", "started", "waiting",
                     "last message")
    print_table(header, [
        [
            str(r["id"]),
            r["persona"],
            r["channel"],
            r["display_name"] or r["external_id"],
            pick(reason(r["reason_intent"]), reason(r["reason_intent"], lang)),
            pick(when(r["started"] or r["last_seen"], persona_zone(r["persona"], tz), moment),
                 when(r["started"] or r["last_seen"], persona_zone(r["persona"], tz), moment,
                      lang)),
            pick(ago(r["waiting_since"], moment), ago(r["waiting_since"], moment, lang)),
            truncate(terminal_safe(r["last_message"] or ""), 40),
        ]
        for r in rows
    ], fit=True, keep=(0, 4, 5, 6))
    click.echo(_("{count} conversation(s) in handoff").format(count=len(rows)))


@handoff.command("end")
@click.argument("fan")
@click.option("--db", default=DEFAULT_DB, show_default=True)
@click.option("--persona", "-p", help="Persona id or path (default: the fan's persona id).")
@click.option("--config", help="Settings file with the channels' credentials (brandbot.yaml).")
def handoff_end(fan: str, db: str, persona: str | None, config: str | None) -> None:
    """Give a conversation back to the bot (FAN: id, external id or name).

    Prints the in-voice message and delivers it through the fan's channel (Telegram and WeChat
    by their APIs with the daemon's settings; web chat through the page's outbox).

    Example: brandbot handoff end local-fan
    """
    from bot.engine import Engine
    from bot.messages import FanRef, Inbound

    store = open_store(db)
    try:
        row = one_fan(store, fan, prefer_handoff=True)
        if not row["handoff"]:
            fail(_("fan {fan!r} is not in handoff").format(fan=fan))
        brand = load_brand(persona or row["persona"])
        if brand.id != row["persona"]:
            fail(_("fan {fan!r} talks to persona {persona!r}, not {other!r}").format(
                fan=fan, persona=row["persona"], other=brand.id))
        engine = Engine(store, brand)
        replies = engine.handle(
            Inbound(FanRef(row["channel"], row["external_id"]), kind="event", event="handoff_end")
        )
        for reply in replies:
            echo(reply.text)
        if replies and row["channel"] != "console":
            # Tell the fan too, through their channel (web chat: the outbox their page polls).
            status, why = push(load_settings_or_fail(config, db), store, brand.id, row, replies)
            echo(_delivery_word(status) + (_(": ") + why if why else ""), err=True)
            if status == "failed":
                sys.exit(1)
    finally:
        store.close()


@click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")
@click.option("--db", help="SQLite relationship log (default: the daemon's settings).")
@click.argument("text")
@click.argument("fan_ref", metavar="FAN")
@click.command("reply")
def handoff_reply(fan_ref, text, db, config) -> None:
    """Answer a fan in handoff as a human, through the fan's channel (FAN: id, platform id, name).

    The message is logged as an outbound message by the operator (reply_key `operator`) once
    the platform accepted it. Telegram and WeChat fans get it at once; for a web chat fan it
    waits in the outbox until their page fetches it (within seconds while it is open).

    Example: brandbot handoff reply 42 "您好，我是店长，已经为您安排退款。"
    """
    from bot.messages import Reply
    from bot.relations.desk import OPERATOR_KEY, log_operator_reply

    settings = load_settings_or_fail(config, db)
    store = open_store(settings.db)
    try:
        row = one_fan(store, fan_ref, prefer_handoff=True)
        if not row["handoff"]:
            fail(_("fan {fan!r} is not in handoff (the bot answers them); see "
                   "`brandbot handoff list`").format(fan=fan_ref))
        status, why = push(settings, store, row["persona"], row, [Reply(text, OPERATOR_KEY)])
        if status not in ("sent", "queued"):
            fail(_("not delivered to fan {id} on {channel}: {why}").format(
                id=row["id"], channel=row["channel"], why=why))
        log_operator_reply(store, row, text, now())
    finally:
        store.close()
    if status == "queued":
        echo(_("queued for fan {id} on web: their chat page shows it on its next request (it "
               "polls every few seconds while open)").format(id=row["id"]))
    else:
        echo(_("sent to fan {id} on {channel}").format(id=row["id"], channel=row["channel"]))


@click.option("--limit", "-n", default=50, show_default=True, help="How many messages.")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.argument("fan_ref", metavar="FAN")
@click.command("show")
def handoff_show(fan_ref, db, limit) -> None:
    """Show a fan's conversation: who said what and when (fan, bot, operator).

    Example: brandbot handoff show 42
    """
    from bot.relations.desk import handoff_started, transcript

    store = open_store(db)
    try:
        row = one_fan(store, fan_ref, prefer_handoff=True)
        lines = transcript(store, row["id"], limit)
        since = handoff_started(store, row["id"]) if row["handoff"] else None
    finally:
        store.close()
    state = (_("in handoff since {since}").format(since=since) if row["handoff"]
             else _("with the bot"))
    echo(_("fan {id} · {name} · {channel} · {stage} · {state}").format(
        id=row["id"], name=terminal_safe(row["display_name"] or row["external_id"]),
        channel=row["channel"], stage=row["stage"], state=state))
    for line in lines:
        stamp = line["at"][:16].replace("T", " ")
        note = f"  [{line['intent']}]" if line["who"] == "fan" and line["intent"] else ""
        text = terminal_safe(line["text"], continuation=" " * 28)  # under the first line's text
        echo(f"{stamp}  {line['who']:>8}: {text}{note}")


@click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")
@click.option("--db", help="SQLite relationship log (default: the daemon's settings).")
@click.option("--persona", "-p", "personas", multiple=True,
              help="Persona id or path (repeatable; default: the settings' personas).")
@click.command("expire")
def handoff_expire(config, db, personas) -> None:
    """Give abandoned handoffs back to the bot (persona desk.handoff_timeout_minutes).

    Each fan gets the persona's in-voice `handoff_end` reply through their channel where the
    command can reach it. The daemon does this by itself every minute (a scheduled job, see
    `brandbot jobs list`); this command is for running it by hand.

    Example: brandbot handoff expire
    """
    from bot.engine import Engine
    from bot.scheduled import expire_handoffs

    settings = load_settings_or_fail(config, db)
    refs = list(personas) or [p.persona for p in settings.personas]
    store = open_store(settings.db)
    try:
        brands = {brand.id: brand for brand in map(load_brand, refs)}
        expired = expire_handoffs(Engine(store, brands), now())
        statuses = push_many(settings, store, [
            (e.persona, {"id": e.fan_id, "channel": e.fan.channel,
                         "external_id": e.fan.external_id}, e.replies)
            for e in expired
        ])
        for item, (status, why) in zip(expired, statuses, strict=True):
            told = {"sent": _("told so"),
                    "queued": _("told on their chat page's next request")}.get(status)
            echo(_("fan {id} ({channel}) back with the bot; ").format(
                id=item.fan_id, channel=item.fan.channel)
                 + (told or _("not told: {why}").format(why=why)))
    finally:
        store.close()
    echo(_("{count} abandoned handoff(s) returned to the bot").format(count=len(expired)))


# Declared with @click.command under their options (the arguments' order, FAN then TEXT,
# follows from that), so they join the group here.
for _command in (handoff_reply, handoff_show, handoff_expire):
    handoff.add_command(_command)
