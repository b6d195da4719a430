"""``brandbot broadcast`` (send, resume, list, show): newsletters to a persona's subscribers.

Each command's docstring is its help text and ends with an example.
"""

from __future__ import annotations

import click

from bot.commands.common import (
    DB_HELP,
    DEFAULT_DB,
    fail,
    load_persona,
    load_settings_or_fail,
    now,
    open_store,
    print_table,
)
from bot.commands.delivery import secrets_of, why_failed, why_failed_zh
from bot.i18n import _, columns
from bot.tables import echo


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
            id=broadcast_id, why=why_failed(exc, secrets), why_zh=why_failed_zh(exc)))
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
    settings = load_settings_or_fail(config, db)
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
              secrets_of(settings))
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

    settings = load_settings_or_fail(config, db)
    store = open_store(settings.db)
    try:
        try:
            row = broadcast_row(store, broadcast_id)
        except BroadcastError as exc:
            fail(str(exc))
        model = load_persona(persona or row["persona"])
        outlets, _ = outlets_from_settings(settings, store, model.id, rate=rate or None)
        _send(store, broadcast_id, model, outlets, max(20, int(rate or 500)),
              secrets_of(settings))
    finally:
        store.close()


@broadcast.command("list")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
def broadcast_list(db) -> None:
    """List broadcasts with their delivery counts.

    Example: brandbot broadcast list
    """
    from bot.relations.broadcast_history import broadcast_summaries

    store = open_store(db)
    rows = broadcast_summaries(store)
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
    from bot.relations.broadcast_history import delivery_breakdown

    store = open_store(db)
    try:
        try:
            row = broadcast_row(store, broadcast_id)
        except BroadcastError as exc:
            fail(str(exc))
        rows = delivery_breakdown(store, broadcast_id)
    finally:
        store.close()
    echo(_("broadcast {id} ({persona}, {status}), audience {audience!r}, created {created}").format(
        id=broadcast_id, persona=row["persona"], status=row["status"], audience=row["audience"],
        created=row["created_at"]))
    echo(row["text"])
    print_table(columns("status", "why", "fans"),
                [[r[0], r[1], str(r[2])] for r in rows])
