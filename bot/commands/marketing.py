"""Referrals, KOLs, privacy, newsletters, the operator desk and reports (issue 6).

Each command's docstring is its help text and ends with an example.
"""

from __future__ import annotations

import re

import click

from bot.commands.common import (
    DB_HELP,
    DEFAULT_DB,
    fail,
    load_persona,
    now,
    one_fan,
    open_store,
    print_table,
)
from bot.i18n import _, columns, pgettext
from bot.tables import echo, json_text, terminal_safe

DEFAULT_PERSONA = "laowang-kitchen"


def register(main: click.Group, handoff: click.Group) -> None:
    main.add_command(campaign)
    main.add_command(fan)
    main.add_command(kols)
    main.add_command(broadcast)
    main.add_command(report)
    main.add_command(calendar)
    handoff.add_command(handoff_reply)
    handoff.add_command(handoff_show)
    handoff.add_command(handoff_expire)


# -- campaigns and links -------------------------------------------------------------------------


@click.group()
def campaign() -> None:
    """Campaign codes for posters, events and ads."""


def link_options(command):
    """--telegram-bot, --web-url and --config: where a printed link points (see link_targets)."""
    command = click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")(
        command)
    command = click.option("--web-url", help="Public address of the web chat (default: "
                           "public_url from the settings).")(command)
    return click.option("--telegram-bot", help="The bot's @username (default: "
                        "telegram.bot_username, else asked with getMe).")(command)


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
    from bot.relations import Store
    from bot.relations.campaigns import CampaignError, create_campaign, links

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

    from bot.relations import Store
    from bot.relations.campaigns import CODE, links

    suffix = Path(output).suffix.lower()
    if suffix not in (".png", ".svg"):
        fail(_("{output}: write the image as .png or .svg").format(output=output))
    if not CODE.match(code):
        fail(_("code {code!r} cannot travel in a link: use 1-64 of A-Z a-z 0-9 _ -").format(
            code=code))
    if Path(db).exists():
        store = Store(db)
        try:
            known = store.fetch_all("SELECT 1 FROM campaigns WHERE code = ?", (code,)) or (
                store.fan_by_referral_code(code) is not None)
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


def link_targets(config: str | None, telegram_bot: str | None, web_url: str | None, *,
                 need_telegram: bool = False, need_web: bool = False) -> tuple[str | None, str]:
    """The bot's username and the web chat's public address for links: the flags, else the
    settings (telegram.bot_username, public_url), else the bot's getMe; a note on stderr (or
    exit 1 when the link asked for needs it) when one is unknown."""
    settings = None
    if telegram_bot is None or web_url is None:
        settings = _settings(config, None)
    if web_url is None:
        web_url = settings.public_url
        if web_url is None:
            if need_web:
                fail(_("set public_url (brandbot.yaml or BRANDBOT_PUBLIC_URL) to the address "
                       "fans reach the web chat at, or pass --web-url; a printed QR code of "
                       "127.0.0.1 opens nothing"))
            click.echo(_("note: public_url is not set; web links point at this machine "
                         "(http://127.0.0.1:8080/)"), err=True)
            web_url = "http://127.0.0.1:8080/"
    if telegram_bot is None:
        telegram_bot = settings.telegram.bot_username or _bot_username_from_getme(settings)
        if telegram_bot is None and need_telegram:
            fail(_("the bot's username is unknown: set telegram.bot_username "
                   "(BRANDBOT_TELEGRAM_BOT_USERNAME) or BRANDBOT_TELEGRAM_TOKEN, or pass "
                   "--telegram-bot"))
    return telegram_bot, web_url


def _bot_username_from_getme(settings) -> str | None:
    """Ask Telegram who the configured token belongs to (None without a token or an answer)."""
    import asyncio

    from telegram import Bot
    from telegram.error import TelegramError

    from bot.channels.telegram import DEFAULT_API_URL

    if not settings.telegram.enabled:
        return None

    async def ask() -> str | None:
        bot = Bot(settings.telegram.token.get_secret_value(),
                  base_url=(settings.telegram.api_url or DEFAULT_API_URL).rstrip("/"))
        try:
            return (await bot.get_me()).username
        finally:
            await bot.shutdown()

    try:
        return asyncio.run(ask())
    except TelegramError as exc:
        click.echo(_("note: Telegram getMe failed ({error}); no Telegram link").format(
            error=exc.message), err=True)
        return None


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
    from bot.relations.campaigns import links

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


# -- newsletters ---------------------------------------------------------------------------------


def _settings(config: str | None, db: str | None):
    from bot.config import SettingsError, load_settings

    try:
        return load_settings(config, db=db)
    except SettingsError as exc:
        for line in exc.lines:
            echo(_("error: {message}").format(message=line), err=True)
        fail(_("invalid settings; see docs/configuration.md"), 2)


def _print_plan(p, *, dry_run: bool) -> None:
    channels = ", ".join(f"{c} {n}" for c, n in sorted(p.by_channel.items()))
    shown = (_("audience {audience!r}: {total} fan(s); {recipients} would receive it") if dry_run
             else _("audience {audience!r}: {total} fan(s); {recipients} will receive it"))
    echo(shown.format(audience=p.audience.text, total=p.total, recipients=p.recipients)
         + (_(" ({channels})").format(channels=channels) if channels else ""))
    if p.reasons:
        echo(_("not sent to {skipped}:").format(skipped=p.skipped))
        print_table(columns("reason", "fans"),
                    [[r, str(n)] for r, n in p.reasons.most_common()])


def _secrets(settings) -> list[str]:
    """The settings' secret values (bot token, AppSecret...), for masking error text."""
    values = []
    for section in (settings.telegram, settings.wechat):
        for name in ("token", "app_secret", "aes_key", "previous_aes_key"):
            value = getattr(section, name, None)
            value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            if value:
                values.append(str(value))
    return values


# Telegram's request URLs embed the bot token (…/bot<id>:<secret>/getMe).
_BOT_TOKEN = re.compile(r"(bot)\d+:[A-Za-z0-9_-]+")


def _why_failed(exc: BaseException, secrets: list[str]) -> str:
    """One line saying why sending stopped: which API could not be reached and how; never a
    secret (the bot token travels in Telegram's URLs, the AppSecret in WeChat's)."""
    from bot.redact import SecretFilter

    try:
        from telegram.error import InvalidToken, NetworkError
    except ImportError:  # pragma: no cover - python-telegram-bot is a dependency
        InvalidToken = NetworkError = ()  # type: ignore[assignment]  # noqa: N806
    redact = SecretFilter(secrets, patterns=[_BOT_TOKEN]).redact
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    detail = redact(text.splitlines()[0])[:200]
    if isinstance(exc, InvalidToken):
        return "the Telegram API refused the bot token: check BRANDBOT_TELEGRAM_TOKEN"
    if isinstance(exc, NetworkError):
        return f"cannot reach the Telegram API ({detail})"
    return f"{type(exc).__name__}: {detail}"


def _why_failed_zh(exc: BaseException) -> str:
    try:
        from telegram.error import InvalidToken, NetworkError
    except ImportError:  # pragma: no cover
        InvalidToken = NetworkError = ()  # type: ignore[assignment]  # noqa: N806
    if isinstance(exc, InvalidToken):
        return "Telegram 拒绝了机器人令牌"
    if isinstance(exc, NetworkError):
        return "无法连接 Telegram API"
    return "发送出错"


def _send(store, broadcast_id, persona, outlets, batch, secrets=()) -> None:
    import asyncio

    from bot.relations.broadcast import deliver

    def show(progress) -> None:
        total = max(progress.total, 1)
        filled = int(30 * progress.done / total)
        parts = " ".join(f"{k} {v}" for k, v in sorted(progress.counts.items()))
        click.echo(f"\r[{'#' * filled}{'.' * (30 - filled)}] {progress.done}/{progress.total} "
                   f"{parts}", nl=False, err=True)

    try:
        final = asyncio.run(deliver(store, broadcast_id, persona, outlets, clock=now,
                                    batch=batch, on_progress=show))
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback quoting URLs
        click.echo("", err=True)
        fail(_("broadcast {id} stopped: {why}; nothing was sent twice: run `brandbot broadcast "
               "resume {id}` once it works again (广播已暂停：{why_zh}；恢复后运行 `brandbot "
               "broadcast resume {id}` 继续，不会重复发送)").format(
            id=broadcast_id, why=_why_failed(exc, secrets), why_zh=_why_failed_zh(exc)))
    click.echo("", err=True)
    echo(_("broadcast {id}: ").format(id=broadcast_id) + ", ".join(
        f"{status} {n}" for status, n in sorted(final.items())))


@click.group(invoke_without_command=True)
@click.option("--persona", "-p", help="Persona id or path (required to send).")
@click.option("--text", "-t", help="The newsletter text.")
@click.option("--file", "-f", "file", type=click.Path(exists=True, dir_okay=False),
              help="Read the newsletter text from this UTF-8 file.")
@click.option("--audience", "-a", default="all", show_default=True,
              help="all, subscribers, stage>=friend, tag:kol, lang:zh, channel:telegram; "
                   "and / or / not / ( ).")
@click.option("--dry-run", is_flag=True, help="Only count who would receive it and why not.")
@click.option("--db", help="SQLite relationship log (default: the daemon's settings).")
@click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")
@click.option("--rate", type=float, default=30.0, show_default=True,
              help="Telegram messages per second overall; 0 = unlimited (local fakes only).")
@click.option("--batch", type=int, default=0, help="Deliveries per committed batch "
              "(default: one second's worth, at least 20).")
@click.pass_context
def broadcast(ctx, persona, text, file, audience, dry_run, db, config, rate, batch) -> None:
    """Send a newsletter to a persona's subscribers, once each, with the unsubscribe hint.

    Channels come from the daemon's settings (brandbot.yaml, BRANDBOT_*): Telegram through its
    Bot API at ~30 messages/s; WeChat as customer-service messages within the 48-hour window.
    Web chat fans cannot be pushed to. Every fan in the audience gets one delivery row
    (sent / failed / skipped and why); after a crash `brandbot broadcast resume ID` continues
    without sending anyone a second copy. See docs/relationships.md ("Newsletters").

    Example: brandbot broadcast -p laowang-kitchen -t "新菜上线" -a "stage>=friend" --dry-run
    """
    if ctx.invoked_subcommand is not None:
        return
    from bot.relations.audience import AudienceError, parse
    from bot.relations.broadcast import (
        BroadcastError,
        channel_reasons,
        create,
        outlets_from_settings,
    )
    from bot.relations.broadcast import plan as make_plan

    if not persona:
        fail(_("say which persona sends it: --persona P"))
    if (text is None) == (file is None):
        fail(_("give the newsletter as --text T or --file F (one of them)"))
    if file is not None:
        from pathlib import Path

        text = Path(file).read_text(encoding="utf-8")
    try:
        parse(audience)
    except AudienceError as exc:
        fail(str(exc))
    model = load_persona(persona)
    settings = _settings(config, db)
    store = open_store(settings.db)
    try:
        outlets, missing = outlets_from_settings(settings, store, model.id, rate=rate or None)
        able = channel_reasons(outlets, missing)
        if dry_run:
            _print_plan(make_plan(store, model.id, audience, now(), able), dry_run=True)
            return
        try:
            broadcast_id, p = create(store, model, text, audience, now(), able)
        except BroadcastError as exc:
            fail(str(exc))
        echo(_("broadcast {id} recorded").format(id=broadcast_id))
        _print_plan(p, dry_run=False)
        _send(store, broadcast_id, model, outlets, batch or max(20, int(rate or 500)),
              _secrets(settings))
    finally:
        store.close()


@broadcast.command("resume")
@click.argument("broadcast_id", type=int)
@click.option("--db", help="SQLite relationship log (default: the daemon's settings).")
@click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")
@click.option("--rate", type=float, default=30.0, show_default=True,
              help="Telegram messages per second overall; 0 = unlimited (local fakes only).")
@click.option("--persona", "-p", help="Persona id or path (default: the broadcast's).")
def broadcast_resume(broadcast_id, db, config, rate, persona) -> None:
    """Continue a broadcast that stopped (crash, Ctrl-C) without sending anyone a second copy.

    Deliveries that were in flight when it stopped become `unknown` and are not resent.

    Example: brandbot broadcast resume 7
    """
    from bot.relations.broadcast import BroadcastError, broadcast_row, outlets_from_settings

    settings = _settings(config, db)
    store = open_store(settings.db)
    try:
        try:
            row = broadcast_row(store, broadcast_id)
        except BroadcastError as exc:
            fail(str(exc))
        model = load_persona(persona or row["persona"])
        outlets, _ = outlets_from_settings(settings, store, model.id, rate=rate or None)
        _send(store, broadcast_id, model, outlets, max(20, int(rate or 500)),
              _secrets(settings))
    finally:
        store.close()


@broadcast.command("list")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def broadcast_list(db) -> None:
    """List broadcasts with their delivery counts.

    Example: brandbot broadcast list
    """
    store = open_store(db)
    rows = store.conn.execute(
        "SELECT b.id, b.persona, b.audience, b.status, b.created_at, "
        "sum(d.status = 'sent'), sum(d.status = 'failed'), sum(d.status = 'skipped'), "
        "sum(d.status IN ('queued', 'sending')), sum(d.status = 'unknown'), substr(b.text, 1, 30) "
        "FROM broadcasts b LEFT JOIN deliveries d ON d.broadcast_id = b.id "
        "GROUP BY b.id ORDER BY b.id"
    ).fetchall()
    store.close()
    print_table(columns("id", "persona", "audience", "status", "created", "sent", "failed",
                        "skipped", "left", "unknown", "text"),
           [[str(v if v is not None else 0) if i >= 5 and i < 10 else str(v or "")
             for i, v in enumerate(r)] for r in rows])


@broadcast.command("show")
@click.argument("broadcast_id", type=int)
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def broadcast_show(broadcast_id, db) -> None:
    """Show one broadcast: deliveries per status and why the others were not sent.

    Example: brandbot broadcast show 7
    """
    from bot.relations.broadcast import BroadcastError, broadcast_row

    store = open_store(db)
    try:
        try:
            row = broadcast_row(store, broadcast_id)
        except BroadcastError as exc:
            fail(str(exc))
        rows = store.conn.execute(
            "SELECT status, coalesce(error, ''), count(*) FROM deliveries WHERE broadcast_id = ? "
            "GROUP BY status, error ORDER BY count(*) DESC", (broadcast_id,)
        ).fetchall()
    finally:
        store.close()
    echo(_("broadcast {id} ({persona}, {status}), audience {audience!r}, created {created}").format(
        id=broadcast_id, persona=row["persona"], status=row["status"], audience=row["audience"],
        created=row["created_at"]))
    echo(row["text"])
    print_table(columns("status", "why", "fans"),
                [[r[0], r[1], str(r[2])] for r in rows])


# -- the operator desk ---------------------------------------------------------------------------


def _push(settings, store, persona_id: str, row, replies) -> tuple[str, str | None]:
    """Deliver ``replies`` to one fan through their channel, as the CLI can (see _push_many)."""
    return _push_many(settings, store, [(persona_id, row, replies)])[0]


def _push_many(settings, store, items) -> list[tuple[str, str | None]]:
    """Deliver each ``(persona, fan row, replies)``: (status, why not) per item, in order.

    Telegram and WeChat by their APIs, with each persona's senders built and started once;
    web chat fans through the log's outbox, which the daemon hands to the fan's page (its next
    message, or its poll a few seconds later).
    """
    import asyncio
    import contextlib

    from bot.relations import outbox
    from bot.relations.broadcast import CANNOT_PUSH, Item, outlets_from_settings

    async def run() -> list[tuple[str, str | None]]:
        built: dict[str, tuple[dict, dict]] = {}
        started: list = []
        results = []
        try:
            for persona_id, row, replies in items:
                if row["channel"] == outbox.CHANNEL:
                    outbox.enqueue(store, row["id"], replies, now())
                    results.append(("queued", None))
                    continue
                if persona_id not in built:
                    built[persona_id] = outlets_from_settings(settings, store, persona_id,
                                                              rate=30.0)
                outlets, missing = built[persona_id]
                outlet = outlets.get(row["channel"])
                if outlet is None:
                    why = CANNOT_PUSH.get(row["channel"]) or missing.get(row["channel"]) or (
                        f"no {row['channel']} sender")
                    results.append(("failed", why))
                    continue
                status: tuple[str, str | None] = ("sent", None)
                try:
                    if outlet not in started:
                        started.append(outlet)
                        await outlet.start()
                    for n, reply in enumerate(replies):
                        status = (await outlet.deliver(
                            [Item(n, row["id"], row["external_id"], reply.text)]))[n]
                        if status[0] != "sent":
                            break
                except Exception as exc:  # noqa: BLE001 - reported as not delivered, and why
                    status = ("failed", _why_failed(exc, _secrets(settings)))
                results.append(status)
        finally:
            for outlet in started:
                with contextlib.suppress(Exception):
                    await outlet.close()
        return results

    return asyncio.run(run())


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

    settings = _settings(config, db)
    store = open_store(settings.db)
    try:
        row = one_fan(store, fan_ref, prefer_handoff=True)
        if not row["handoff"]:
            fail(_("fan {fan!r} is not in handoff (the bot answers them); see "
                   "`brandbot handoff list`").format(fan=fan_ref))
        status, why = _push(settings, store, row["persona"], row, [Reply(text, OPERATOR_KEY)])
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
    from bot.cli import _load_brand
    from bot.engine import Engine
    from bot.relations.desk import expire_handoffs

    settings = _settings(config, db)
    refs = list(personas) or [p.persona for p in settings.personas]
    store = open_store(settings.db)
    try:
        brands = {brand.id: brand for brand in map(_load_brand, refs)}
        expired = expire_handoffs(Engine(store, brands), now())
        statuses = _push_many(settings, store, [
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


# -- reports -------------------------------------------------------------------------------------


@click.command()
@click.option("--since", help="First day (YYYY-MM-DD; default: 30 days ago).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False),
              help="Also write one self-contained HTML page with charts here.")
@click.option("--persona", "-p", help="Only this persona's fans (id or path).")
@click.option("--tz", help="Count days in this IANA zone (default: the persona's timezone; "
                           "without --persona, Asia/Shanghai).")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report(since, html_file, persona, tz, db, as_json) -> None:
    """Funnel, new fans and their sources, subscribers, messages, intents, misses, handoffs, KOLs.

    Terminal tables by default; --html writes one file (inline SVG charts, no server, no
    network) that opens in any browser. Days are the brand's days (its persona's timezone);
    top KOLs are listed for every persona of the log unless --persona picks one.

    Example: brandbot report --since 2026-01-01 --html report.html
    """
    from datetime import datetime
    from pathlib import Path

    from bot.commands.common import DEFAULT_ZONE, persona_by_id, zone_option
    from bot.persona.model import Relationship, zone_named
    from bot.relations.reports import build, to_html, to_text
    from bot.tables import table_width

    zone_option(tz)
    model = load_persona(persona) if persona else None
    zone = zone_named(tz) if tz else (model.zone if model else zone_named(DEFAULT_ZONE))
    start = None
    if since:
        try:
            start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=zone)
        except ValueError:
            fail(_("--since {since!r}: write the date as YYYY-MM-DD").format(since=since))

    def rules_of(persona_id: str) -> Relationship:
        found = persona_by_id(persona_id)
        return found.relationship if found else Relationship()

    store = open_store(db)
    try:
        data = build(store, now(), start, model.id if model else None,
                     model.relationship if model else None, zone=zone, rules_of=rules_of)
    finally:
        store.close()
    if html_file:
        Path(html_file).write_text(to_html(data), encoding="utf-8")
    if as_json:
        click.echo(json_text(data, indent=2))
    else:
        echo(to_text(data, table_width()), nl=False)
    if html_file:
        echo(_("wrote {target}").format(target=html_file), err=True)


# -- the topic calendar --------------------------------------------------------------------------


@click.group()
def calendar() -> None:
    """The persona's topic calendar: newsletters sent on their date."""


@calendar.command("list")
@click.option("--persona", "-p", default=DEFAULT_PERSONA, show_default=True,
              help="Persona id or path.")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def calendar_list(persona, db) -> None:
    """List the persona's topics: when, audience, and sent / due / upcoming / missed.

    Example: brandbot calendar list -p laowang-kitchen
    """
    from pathlib import Path

    from bot.relations import Store
    from bot.relations.calendar import GRACE, sent_topics

    model = load_persona(persona)
    sent = {}
    if Path(db).exists():
        store = Store(db)
        sent = sent_topics(store, model.id)
        store.close()
    moment, zone = now(), model.zone
    rows = []
    for t in model.calendar:
        at = t.at(zone)
        if t.id in sent:
            state = _("sent (broadcast {id})").format(id=sent[t.id])
        elif moment < at:
            state = pgettext("topic", "upcoming")
        elif moment < at + GRACE:
            state = pgettext("topic", "due")
        else:
            state = pgettext("topic", "missed")
        rows.append([t.id, f"{t.date} {t.time} {zone}", t.audience, state,
                     model.text(t.text, model.default_language)[:30]])
    print_table(columns("topic", "when", "audience", "state", "text"),
                rows)
    echo(_("{count} topic(s)").format(count=len(rows)))


@calendar.command("send")
@click.option("--persona", "-p", "personas", multiple=True,
              help="Persona id or path (repeatable; default: the settings' personas).")
@click.option("--db", help="SQLite relationship log (default: the daemon's settings).")
@click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")
def calendar_send(personas, db, config) -> None:
    """Send the topics that are due (once each) now, by hand.

    The daemon sends each topic by itself at its time (a scheduled job, `brandbot jobs list`);
    a topic is sent once whoever sends it.

    Example: brandbot calendar send
    """
    import asyncio

    from bot.relations.broadcast import counts, outlets_from_settings
    from bot.relations.calendar import send_due_topics

    settings = _settings(config, db)
    store = open_store(settings.db)
    try:
        for ref in list(personas) or [p.persona for p in settings.personas]:
            model = load_persona(ref)
            outlets, missing = outlets_from_settings(settings, store, model.id)
            ids = asyncio.run(send_due_topics(store, model, outlets, now(), missing=missing,
                                              clock=now))
            for broadcast_id in ids:
                final = counts(store, broadcast_id)
                echo(_("{persona}: broadcast {id}: ").format(persona=model.id, id=broadcast_id)
                     + ", ".join(
                    f"{k} {v}" for k, v in sorted(final.items())))
            if not ids:
                echo(_("{persona}: nothing due").format(persona=model.id))
    finally:
        store.close()
